# constant.cw rules for the satd end-to-end zap scenarios (test data only,
# not keys of any service). CAID 2600 services 0001 and 0002.
2600:000000:0001:0000:0000::01 02 03 06 04 05 06 0F 11 12 13 36 14 15 16 3F
2600:000000:0002:0000:0000::21 22 23 66 24 25 26 6F 31 32 33 96 34 35 36 9F
