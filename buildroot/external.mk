include $(sort $(wildcard $(BR2_EXTERNAL_SATD_PATH)/package/*/*.mk))
