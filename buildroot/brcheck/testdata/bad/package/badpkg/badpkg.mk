#######################
#
# badpkg
#
################################################################################

BADPKG_VERSION=1.0
BADPKG_SITE = https://example.org/dl/
BADPKG_LICENCE = MIT
BADPKG_INSTALL_STAGING = NO
BAPKG_DEPENDENCIES = zlib
ifdef BR2_PACKAGE_ZLIB
BADPKG_VERSION = 2.0
endif

define BADPKG_BUILD_CMDS
    $(MAKE) -C $(@D)
endef


BADPKG_CONF_OPTS = --foo  \
	--bar \

BADPKG_X = y 

$(eval $(generic-package))

