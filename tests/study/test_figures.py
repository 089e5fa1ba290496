"""The study figures: which variants the speed/accuracy plot names (the Pareto front always, others only where their
names fit), and the pilot figure's learning-rate axis."""

from hf_seg.study import figures
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


def test_the_pilot_figure_draws_the_learning_rate_on_its_own_axis(monkeypatch, tmp_path):
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.append(fig) or str(path))
    history = [{"epoch": e, "val_mean_iou": 0.3 + 0.01 * e, "lr": 2e-3 * max(0.05, 1 - e / 6)} for e in range(1, 9)]
    figures.plot_pilot({"unet": history, "fpn": history}, tmp_path / "pilot.png")
    miou_ax, lr_ax = saved[0].axes
    assert [line.get_label() for line in miou_ax.get_lines()[:2]] == ["unet", "fpn"]
    assert list(lr_ax.get_lines()[0].get_ydata()) == [r["lr"] for r in history]
    assert [t.get_text() for t in miou_ax.get_legend().get_texts()][-1] == "learning rate (right axis)"
