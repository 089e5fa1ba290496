"""Which variants the speed/accuracy plot names: the Pareto front always, others only where their names fit."""

from hf_seg.study.figures import labelled_points


def point(name: str, fps: float, miou: float) -> dict:
    return {"name": name, "fps": fps, "test_miou": miou}


def test_front_is_named_and_crowded_points_are_not():
    rows = [point("fast", 60.0, 0.27), point("slow_best", 40.0, 0.37), point("twin", 40.0, 0.368),
            point("far_below", 40.0, 0.30), point("middle", 50.0, 0.33)]
    named = [r["name"] for r in labelled_points(rows, front=["slow_best", "middle", "fast"])]
    # twin sits 0.2 points under slow_best at the same speed: its name would overprint; far_below has room
    assert named == ["slow_best", "middle", "fast", "far_below"]


def test_a_single_point_is_named():
    assert [r["name"] for r in labelled_points([point("only", 10.0, 0.5)], front=["only"])] == ["only"]
