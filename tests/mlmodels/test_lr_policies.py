"""Learning-rate policies against DIGITS' (Caffe's) formulas, with hand-computed values."""

import math

import pytest

from apps.mlmodels.lr_policies import curve, learning_rate

RUN = {"base_lr": 0.1, "max_iter": 1000, "gamma": 0.5, "power": 2.0, "step_size": 25.0}


@pytest.mark.parametrize(
    ("policy", "iteration", "expected"),
    [
        ("fixed", 0, 0.1),
        ("fixed", 999, 0.1),
        # step: stepsize = 25 % of 1000 = 250 iterations
        ("step", 249, 0.1),
        ("step", 250, 0.05),
        ("step", 999, 0.1 * 0.5**3),
        # multistep at 30 % and 60 %: iterations 300 and 600
        ("multistep", 299, 0.1),
        ("multistep", 300, 0.05),
        ("multistep", 600, 0.025),
        ("exp", 3, 0.1 * 0.5**3),
        ("inv", 10, 0.1 * (1 + 0.5 * 10) ** -2.0),
        ("poly", 500, 0.1 * (1 - 500 / 1000) ** 2.0),
        ("poly", 1000, 0.0),
        ("sigmoid", 250, 0.05),  # at the step the sigmoid is halfway
        ("sigmoid", 260, 0.1 / (1 + math.exp(-0.5 * 10))),
    ],
)
def test_policies_follow_digits_formulas(policy, iteration, expected):
    lr = learning_rate(policy, iteration, step_values=(30.0, 60.0), **RUN)
    assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_unknown_policy_is_named_in_the_error():
    with pytest.raises(ValueError, match="triangular"):
        learning_rate("triangular", 0, **RUN)


def test_preview_curve_spans_the_run():
    points = curve(points=11, policy="step", **RUN)
    assert points[0] == (0, 0.1) and points[-1][0] == 999
    assert [lr for _, lr in points] == sorted((lr for _, lr in points), reverse=True)


def test_keras_schedule_matches_the_formulas():
    from apps.mlmodels.schedule import DigitsSchedule

    schedule = DigitsSchedule("multistep", 0.1, 1000, gamma=0.5, step_values=[30, 60])
    for i in (0, 299, 300, 650, 1000, 5000):
        expected = learning_rate(
            "multistep", min(i, 1000), base_lr=0.1, max_iter=1000, gamma=0.5, step_values=(30, 60)
        )
        assert float(schedule(i)) == pytest.approx(expected, rel=1e-6)
        assert schedule.value(i) == float(schedule(i))  # what the metrics callback reports
    restored = DigitsSchedule.from_config(schedule.get_config())
    assert float(restored(650)) == pytest.approx(0.025)
