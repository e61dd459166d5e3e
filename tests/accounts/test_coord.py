"""The charts' coordinate filter writes what floatformat:1 writes, for the numbers charts hold."""

import random

from django.template.defaultfilters import floatformat

from accounts.templatetags.class_tags import coord


def test_it_writes_what_floatformat_1_writes():
    rng = random.Random(7)
    values = [0, 0.0, -0.0, 1, 34, 12.25, 12.35, 0.05, 0.15, 2.675, -0.04, -1.25, 599.95, 1e-7, 123456.789]
    values += [rng.uniform(-50, 700) for _ in range(2000)] + [round(rng.uniform(0, 700), 2) for _ in range(2000)]
    values += [i / 20 for i in range(-200, 14000)]  # every half-way case of one decimal in a chart's range
    for v in values:
        assert coord(v) == floatformat(v, 1), v
