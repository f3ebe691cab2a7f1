"""End to end: the fork path and the self-contained task command give the same run."""

from __future__ import annotations

from plait_harness import Plait


def _normalise(values: dict[str, object]) -> dict[str, object]:
    out = dict(values)
    err = out.pop("err", None)
    if err is not None:  # the @catch wrapper: compare what it says, not the object
        out["err"] = (getattr(err, "type", None), str(err))
    return out


def test_fork_and_subprocess_paths_give_identical_artifacts(plait: Plait) -> None:
    flow = "ComboFlow"
    forked = plait.run("combo_flow", "--alpha", "3").ok().run_id
    spawned = plait.run("combo_flow", "--alpha", "3", env={"PLAIT_LOCAL_LAUNCH": "subprocess"}).ok().run_id

    a = plait.all_artifacts(flow, forked)
    b = plait.all_artifacts(flow, spawned)
    assert sorted(a) == sorted(b)
    for key in a:
        assert _normalise(a[key]) == _normalise(b[key]), key
    # And the artifacts are the ones the flow should compute.
    end = a[("end", "")]
    assert end["values"] == [3, 12, 27]
    assert end["scaled"] == [30, 120, 270]
    assert end["label"] == "BIG"
    assert end["hidden_seen"] == "h"
    assert a[("meet", "")]["sides"] == ["left", "right"]
    assert "KeyError" in a[("meet", "")]["err_text"]
    # Same steps, same foreach positions, same inputs shape, in both runs.
    shape = lambda run_id: sorted((t.step, t.foreach_key, len(t.input_paths)) for t in plait.tasks(flow, run_id))  # noqa: E731
    assert shape(forked) == shape(spawned)
    # Unchanged artifacts are the same blobs whichever way the task ran.
    ia = plait.index(flow, forked, "end")
    ib = plait.index(flow, spawned, "end")
    assert {k: r.sha for k, r in ia.artifacts.items() if k != "err"} == \
        {k: r.sha for k, r in ib.artifacts.items() if k != "err"}
