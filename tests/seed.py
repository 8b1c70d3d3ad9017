"""The EIPredictor write-up's published table (us-west-2, 2019, FasterRCNN-ResNet50, 1080p)."""

# (catalog name, $/hour, ms per inference, $ per 100k as published). The catalog keeps the
# write-up's rows; where today's row has the plain name, the write-up's has a -2019 suffix.
SEED_ROWS = [
    ("m5.large+eia.large", 0.36, 222.78, 2.20),
    ("m5.large+eia.xlarge", 0.62, 140.96, 2.41),
    ("m5.4xlarge-2019", 0.77, 415.87, 8.87),
    ("c5.4xlarge-2019", 0.68, 363.45, 6.87),
    ("p2.xlarge", 0.90, 197.68, 4.94),
    ("p3.2xlarge-2019", 3.06, 61.04, 5.19),
]
