"""The charts' number writer writes what floatformat writes, for the numbers charts hold."""

import random

from django.template.defaultfilters import floatformat

from accounts.charts import fixed


def test_it_writes_what_floatformat_1_writes():
    rng = random.Random(7)
    values = [0, 0.0, -0.0, 1, 34, 12.25, 12.35, 0.05, 0.15, 2.675, -0.04, -1.25, 599.95, 1e-7, 123456.789]
    values += [rng.uniform(-50, 700) for _ in range(2000)] + [round(rng.uniform(0, 700), 2) for _ in range(2000)]
    values += [i / 20 for i in range(-200, 14000)]  # every half-way case of one decimal in a chart's range
    for v in values:
        assert fixed(v) == floatformat(v, 1), v


def test_it_writes_error_rates_as_floatformat_4_does():
    rng = random.Random(11)
    values = [0, 1, 0.0041, 0.00005, 0.00015, 1e-6, 0.12345, 0.99995, 0.5]
    values += [rng.random() for _ in range(3000)] + [rng.random() / 100 for _ in range(1000)]
    values += [i / 20000 for i in range(0, 20001)]  # every half-way case of four decimals from 0 to 1
    for v in values:
        assert fixed(v, 4) == floatformat(v, 4), v


def test_it_writes_nothing_for_what_is_not_a_number():
    assert fixed(None) == "" and fixed("x") == ""
