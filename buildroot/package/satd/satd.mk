################################################################################
#
# satd
#
################################################################################

SATD_VERSION = $(call qstrip,$(BR2_PACKAGE_SATD_VERSION))
ifeq ($(BR2_PACKAGE_SATD_SOURCE_LOCAL),y)
SATD_SITE = $(call qstrip,$(BR2_PACKAGE_SATD_LOCAL_PATH))
SATD_SITE_METHOD = local
else ifeq ($(BR2_PACKAGE_SATD_SOURCE_GIT),y)
SATD_SITE = $(call qstrip,$(BR2_PACKAGE_SATD_GIT_URL))
SATD_SITE_METHOD = git
else
SATD_SITE = $(call qstrip,$(BR2_PACKAGE_SATD_TARBALL_SITE))
endif
SATD_LICENSE = MIT
SATD_LICENSE_FILES = LICENSE
SATD_GOMOD = satd.dev/satd
SATD_BUILD_TARGETS = cmd/satd
# Static binary whatever the toolchain offers: the infrastructure turns cgo
# on when it can link it, and this later assignment wins.
SATD_GO_ENV = CGO_ENABLED=0
SATD_LDFLAGS = -s -w -X main.version=$(SATD_VERSION)
# HTTP/2 is never used on the box (plain HTTP/1.1 on the LAN); leaving it
# out saves about 0.5 MB. satd_nodemo leaves out the demo, simulated cards
# and `satd lbsim`, developer tools a box never runs (about 0.18 MB).
SATD_TAGS = nethttpomithttp2 satd_nodemo
# Cold packages are built without inlining (about 0.33 MB less); the list,
# shared with the top-level Makefile, is cmd/satd/noinline.txt in the source.
SATD_GCFLAGS = $(foreach p,$(shell sed -n 's/^\([a-z][^ ]*\)$$/\1/p' \
	$(SATD_SRCDIR)/cmd/satd/noinline.txt 2>/dev/null),-gcflags=$(p)=-l)
SATD_BUILD_OPTS = $(SATD_GCFLAGS)

SATD_CONFIG_PATH = $(call qstrip,$(BR2_PACKAGE_SATD_CONFIG_PATH))

# Settings from Config.in, rendered into the default configuration by
# render-config.sh.
SATD_RENDER_ENV = \
	SATD_WEB=$(if $(BR2_PACKAGE_SATD_WEB),y,n) \
	SATD_WEB_PORT=$(BR2_PACKAGE_SATD_WEB_PORT) \
	SATD_STREAM=$(if $(BR2_PACKAGE_SATD_STREAM),y,n) \
	SATD_STREAM_PORT=$(BR2_PACKAGE_SATD_STREAM_PORT) \
	SATD_DVBAPI_TCP_PORT=$(BR2_PACKAGE_SATD_DVBAPI_TCP_PORT) \
	SATD_BOARD_FILE="$(call qstrip,$(BR2_PACKAGE_SATD_BOARD_CUSTOM_FILE))"

ifeq ($(BR2_PACKAGE_SATD_DVBAPI_ENIGMA2),y)
SATD_RENDER_ENV += SATD_DVBAPI=enigma2
else ifeq ($(BR2_PACKAGE_SATD_DVBAPI_TCP),y)
SATD_RENDER_ENV += SATD_DVBAPI=tcp
else
SATD_RENDER_ENV += SATD_DVBAPI=camd-socket
endif

ifeq ($(BR2_PACKAGE_SATD_BOARD_INTERNAL_1),y)
SATD_RENDER_ENV += SATD_BOARD=internal-1
else ifeq ($(BR2_PACKAGE_SATD_BOARD_INTERNAL_2),y)
SATD_RENDER_ENV += SATD_BOARD=internal-2
else ifeq ($(BR2_PACKAGE_SATD_BOARD_PHOENIX),y)
SATD_RENDER_ENV += SATD_BOARD=phoenix
else ifeq ($(BR2_PACKAGE_SATD_BOARD_CUSTOM),y)
SATD_RENDER_ENV += SATD_BOARD=custom
else
SATD_RENDER_ENV += SATD_BOARD=none
endif

# The pristine default goes to /usr/share/satd; the init script copies it to
# the configuration path at start only when no configuration exists there, so
# an upgrade never overwrites the user's settings. It is also installed at
# the configuration path now when the target tree has none yet.
define SATD_INSTALL_DEFAULT_CONFIG
	$(SATD_RENDER_ENV) $(SHELL) $(SATD_PKGDIR)/render-config.sh \
		>$(@D)/satd-default.toml
	$(INSTALL) -D -m 0644 $(@D)/satd-default.toml \
		$(TARGET_DIR)/usr/share/satd/satd.toml
	test -e $(TARGET_DIR)$(SATD_CONFIG_PATH) || \
		$(INSTALL) -D -m 0600 $(@D)/satd-default.toml \
			$(TARGET_DIR)$(SATD_CONFIG_PATH)
	mkdir -p $(TARGET_DIR)/etc/default
	test -e $(TARGET_DIR)/etc/default/satd || \
		printf 'SATD_CONFIG="%s"\n' "$(SATD_CONFIG_PATH)" \
			>$(TARGET_DIR)/etc/default/satd
endef
SATD_POST_INSTALL_TARGET_HOOKS += SATD_INSTALL_DEFAULT_CONFIG

define SATD_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(SATD_PKGDIR)/S90satd \
		$(TARGET_DIR)/etc/init.d/S90satd
endef

ifeq ($(BR2_mips)$(BR2_mipsel),y)
# Buildroot's Go infrastructure has no 32-bit MIPS support, but the host Go
# compiler cross-compiles to it: a generic package running host go, with the
# module vendoring of the download step that golang-package would set up.
SATD_DEPENDENCIES += host-go
SATD_DOWNLOAD_DEPENDENCIES += host-go
SATD_DOWNLOAD_POST_PROCESS = go
SATD_DL_ENV += $(HOST_GO_COMMON_ENV) GOPROXY=direct
SATD_GOARCH = $(if $(BR2_mipsel),mipsle,mips)

define SATD_BUILD_CMDS
	cd $(@D) && $(HOST_GO_COMMON_ENV) CGO_ENABLED=0 GOOS=linux \
		GOARCH=$(SATD_GOARCH) GOMIPS=softfloat \
		$(GO_BIN) build -mod=vendor -trimpath -buildvcs=false \
		-tags "$(SATD_TAGS)" -ldflags "$(SATD_LDFLAGS)" $(SATD_GCFLAGS) \
		-o $(@D)/bin/satd ./$(SATD_BUILD_TARGETS)
endef

define SATD_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/bin/satd $(TARGET_DIR)/usr/bin/satd
endef

$(eval $(generic-package))
else
$(eval $(golang-package))
endif
