"""Namespaces and tags: what each user sees, and tag changes seen by other processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from plait.client import (
    Flow,
    Metaflow,
    Run,
    Task,
    default_namespace,
    get_namespace,
    namespace,
)
from plait.exceptions import NamespaceMismatch, PlaitException
from plait_harness import Plait

TINY = textwrap.dedent('''
    from plait import FlowSpec, step


    class {name}(FlowSpec):
        @step
        def start(self):
            self.x = 1
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        {name}()
''')


@dataclass
class Users:
    plait: Plait
    mine: str  # SharedFlow run by tester
    mine_tagged: str  # SharedFlow run by tester with --tag team
    theirs: str  # SharedFlow run by alice
    alice_only: str  # AliceFlow, run by alice only


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Users]:
    p = Plait(tmp_path_factory.mktemp("client-users"))
    for name in ("SharedFlow", "AliceFlow"):
        (p.tmp / f"{name.lower()}.py").write_text(TINY.format(name=name))
    shared, alice_flow = str(p.tmp / "sharedflow.py"), str(p.tmp / "aliceflow.py")
    mine = p.run(shared).ok().run_id
    mine_tagged = p.run(shared, "--tag", "team").ok().run_id
    theirs = p.run(shared, "--tag", "team", env={"PLAIT_USER": "alice"}).ok().run_id
    alice_only = p.run(alice_flow, env={"PLAIT_USER": "alice"}).ok().run_id
    yield Users(p, mine, mine_tagged, theirs, alice_only)
    p.close()


@pytest.fixture(autouse=True)
def as_tester(users: Users, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PLAIT_DATASTORE_ROOT", str(users.plait.root))
    monkeypatch.setenv("PLAIT_USER", "tester")
    default_namespace()
    yield
    default_namespace()


def ids(objects: Iterator[object]) -> list[str]:
    return [o.id for o in objects]  # type: ignore[attr-defined]


def test_default_namespace_is_the_user(users: Users) -> None:
    assert default_namespace() == "user:tester" == get_namespace()
    assert ids(Flow("SharedFlow")) == [users.mine_tagged, users.mine]
    assert ids(Flow("SharedFlow").runs("team")) == [users.mine_tagged]
    assert Flow("SharedFlow").latest_run.id == users.mine_tagged
    assert ids(Metaflow()) == ["SharedFlow"]
    assert users.theirs in Flow("SharedFlow")  # `in` does not filter, as in Metaflow


def test_objects_outside_the_namespace_are_refused_clearly(users: Users) -> None:
    for make in (lambda: Run(f"SharedFlow/{users.theirs}"),
                 lambda: Run(f"SharedFlow/{users.theirs}")["start"],
                 lambda: Task(f"SharedFlow/{users.theirs}/start/1"),
                 lambda: Flow("SharedFlow")[users.theirs]):
        with pytest.raises(NamespaceMismatch) as info:
            make()
        text = str(info.value)
        assert "user:tester" in text and "user:alice" in text and "namespace(None)" in text
    with pytest.raises(NamespaceMismatch, match="no run in the current namespace"):
        Flow("AliceFlow")
    run = Run(f"SharedFlow/{users.theirs}", _namespace_check=False)
    assert run.data is not None and not run.is_in_namespace()


def test_switching_namespaces(users: Users) -> None:
    assert namespace("user:alice") == "user:alice"
    assert ids(Flow("SharedFlow")) == [users.theirs]
    assert ids(Metaflow()) == ["AliceFlow", "SharedFlow"]
    assert Flow("AliceFlow").latest_run.id == users.alice_only
    namespace("team")  # any tag works as a namespace
    assert ids(Flow("SharedFlow")) == [users.theirs, users.mine_tagged]
    assert namespace(None) is None and get_namespace() is None
    assert ids(Flow("SharedFlow")) == [users.theirs, users.mine_tagged, users.mine]
    assert Run(f"SharedFlow/{users.theirs}").is_in_namespace()
    with pytest.raises(PlaitException):
        namespace("")  # type: ignore[arg-type]
    assert default_namespace() == "user:tester"


def _other_process(users: Users, code: str) -> str:
    env = dict(users.plait.env)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_tag_changes_are_seen_by_another_process(users: Users) -> None:
    run = Run(f"SharedFlow/{users.mine}")
    run.add_tag("golden")
    run.add_tags(["a", "b"])
    assert run.user_tags == {"golden", "a", "b"}
    assert ids(Flow("SharedFlow").runs("golden")) == [users.mine]
    seen = _other_process(users, f"""
        import json
        from plait import Run, Flow
        run = Run("SharedFlow/{users.mine}")
        print(json.dumps([sorted(run.user_tags), [r.id for r in Flow("SharedFlow").runs("golden")]]))
        run.replace_tag("golden", "silver")
        run.remove_tags(["a"])
    """)
    assert json.loads(seen) == [["a", "b", "golden"], [users.mine]]
    assert Run(f"SharedFlow/{users.mine}").user_tags == {"silver", "b"}
    assert ids(Flow("SharedFlow").runs("golden")) == [] and ids(Flow("SharedFlow").runs("silver")) == [users.mine]
    run.replace_tags(["silver", "b"], [])
    assert run.user_tags == frozenset() and Run(f"SharedFlow/{users.mine}").user_tags == frozenset()


def test_tags_set_with_the_cli_are_seen_by_the_client(users: Users) -> None:
    flow_file = str(users.plait.tmp / "sharedflow.py")
    users.plait.flow(flow_file, "tag", "add", "--run-id", users.mine_tagged, "from-cli").ok()
    assert "from-cli" in Run(f"SharedFlow/{users.mine_tagged}").user_tags
    Run(f"SharedFlow/{users.mine_tagged}").remove_tag("from-cli")
    out = users.plait.flow(flow_file, "tag", "list", "--run-id", users.mine_tagged).ok().stdout
    assert "from-cli" not in out and "team" in out


def test_tag_rules(users: Users) -> None:
    run = Run(f"SharedFlow/{users.mine}")
    run.add_tag("runtime:dev")  # already a system tag: not added as a user tag, no error
    assert "runtime:dev" not in run.user_tags and "runtime:dev" in run.system_tags
    with pytest.raises(PlaitException, match="system tags"):
        run.remove_tag("user:tester")
    with pytest.raises(PlaitException, match="system tags"):
        run.replace_tag("user:tester", "x")
    assert "x" not in Run(f"SharedFlow/{users.mine}").user_tags
    run.remove_tag("never-there")  # no-op
    for bad in ("", None, 3):
        with pytest.raises(PlaitException):
            run.add_tag(bad)  # type: ignore[arg-type]
    with pytest.raises(PlaitException, match="lists of tags"):
        run.replace_tags("a", "b")  # type: ignore[arg-type]


CLIENT_IN_TASK = textwrap.dedent('''
    from plait import Flow, FlowSpec, get_namespace, step


    class ReaderFlow(FlowSpec):
        """Uses the client inside its steps, as Metaflow flows often do."""

        @step
        def start(self):
            self.ns = get_namespace()
            self.visible = [r.id for r in Flow("SharedFlow")]
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        ReaderFlow()
''')


def test_the_client_inside_a_running_task(users: Users) -> None:
    path = users.plait.tmp / "reader_flow.py"
    path.write_text(CLIENT_IN_TASK)
    mine = Run(f"ReaderFlow/{users.plait.run(str(path)).ok().run_id}")
    assert mine.data.ns == "user:tester" and mine.data.visible == [users.mine_tagged, users.mine]
    team = Run(f"ReaderFlow/{users.plait.run(str(path), '--namespace', 'team').ok().run_id}")
    assert team.data.ns == "team" and team.data.visible == [users.theirs, users.mine_tagged]
