"""Random kills, measured: SIGKILL a small run again and again, resume it each time, and check
that it ends with the uninterrupted run's logbook and lineage.

Each chain starts a run, kills it, resumes it, kills the resume, and so on, then lets the
last resume finish. A kill lands either at a named write phase or at a random moment:

- at a phase, the run's own processes kill the main process as they open the file that
  phase writes, through an audit hook this script installs (a ``sitecustomize`` on
  ``PYTHONPATH``; the package has no fault hooks of its own): ``checkpoint`` (a child's
  checkpoint, written by a worker with ``cpu_workers: 1``), ``state``, ``logs`` (the
  logbook or the lineage) and ``best`` (``best.pt``);
- at a random moment, this script sends the SIGKILL after a random delay.

Half the chains evaluate in-process, half with one CPU worker. After each kill the script
waits for every process of the run to exit (workers must die with their main process)
before it resumes. A kill counts as survived when its chain ends equal to the
uninterrupted run. Run from the repository root:

    python benchmarks/kill_and_resume.py            # 32 kills, about 5 minutes on 2 cores
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from epbt_deap.rundir.logs import read_jsonl

REPOSITORY = Path(__file__).resolve().parents[1]
PHASES = {"checkpoint": (".g",), "state": (".state.pkl.",), "logs": ("lineage.jsonl", "logbook.jsonl"),
          "best": (".best.pt.",)}
RANDOM = "random"
KILL_HOOK = '''\
"""Installed by benchmarks/kill_and_resume.py: SIGKILL the run's main process as the Nth file
whose name starts with EPBT_KILL_AT is opened for writing in this process."""
import os
import signal
import sys

if os.environ.get("EPBT_KILL_AT"):
    _prefix, _nth, _seen = os.environ["EPBT_KILL_AT"], int(os.environ["EPBT_KILL_NTH"]), [0]

    def _kill_at_write(event, args):
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else flags & (os.O_WRONLY | os.O_RDWR)
        if writing and os.path.basename(os.fsdecode(path)).startswith(_prefix):
            _seen[0] += 1
            if _seen[0] == _nth:
                import multiprocessing
                parent = multiprocessing.parent_process()  # a worker's main process, whoever forked it
                os.kill(os.getpid() if parent is None else parent.pid, signal.SIGKILL)

    sys.addaudithook(_kill_at_write)
'''


def small_run(workers: int) -> dict:
    """A real run of a few seconds: digits, population 4, 8 generations of 1 epoch."""
    return {"name": "kills", "seed": 5, "data": {"dataset": "digits", "train_subset": 300},
            "train": {"model": "digits_cnn", "epochs_per_generation": 1, "batch_size": 32, "lr_milestones": [5]},
            "evolution": {"population": 4, "elites": 2, "generations": 8},
            "resources": {"device": "cpu", "cpu_workers": workers, "threads_per_worker": 1}}


@dataclass
class Kill:
    chain: int
    workers: int
    phase: str
    tried: bool = False
    landed: bool = False
    generations_done: int = 0  # completed generations when it landed
    survived: bool = False

    def outcome(self) -> str:
        if not self.tried:
            return "not tried: the run had finished"
        if not self.landed:
            return f"did not land: the run finished first ({self.generations_done} generations)"
        return f"landed after {self.generations_done} generation(s); {'survived' if self.survived else 'NOT SURVIVED'}"


def read_rows(path: Path) -> list[dict]:
    """The complete JSON lines of a log (a half-written last line left out)."""
    return read_jsonl(path, {}, live=True) if path.exists() else []


def comparable(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """Logbook and lineage without what no two runs share: when each generation ended and how long each took."""
    logbook = [{k: v for k, v in row.items() if k != "time"} for row in read_rows(run_dir / "logbook.jsonl")]
    lineage = [{k: v for k, v in row.items() if k != "seconds"} for row in read_rows(run_dir / "lineage.jsonl")]
    return logbook, lineage


def group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` still runs (zombies waiting for their reaper do not)."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(group) and fields[0] != "Z":
            return True
    return False


class Launcher:
    """Starts the run in a folder (``evolve`` while it holds no run yet, then ``resume``);
    its stderr goes to ``<folder>.log``."""

    def __init__(self, hook_dir: Path, config: Path) -> None:
        self.hook_dir, self.config = hook_dir, config

    def start(self, run_dir: Path, kill_at: tuple[str, int] | None) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(self.hook_dir), str(REPOSITORY)])}
        env.pop("EPBT_KILL_AT", None)
        if kill_at is not None:
            env["EPBT_KILL_AT"], env["EPBT_KILL_NTH"] = kill_at[0], str(kill_at[1])
        args = (["resume", str(run_dir)] if (run_dir / "config.yaml").exists()
                else ["evolve", "--config", str(self.config), "--run-dir", str(run_dir)])
        with open(run_dir.with_suffix(".log"), "a") as log:
            return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPOSITORY,
                                    stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def finish(process: subprocess.Popen, kill_after: float | None) -> int:
    """Wait for ``process`` (SIGKILL it after ``kill_after`` seconds), then for every process of its group."""
    try:
        process.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 10
    while group_alive(process.pid):
        if time.monotonic() > deadline:
            raise SystemExit(f"processes of group {process.pid} outlived their main process by 10 s")
        time.sleep(0.05)
    return process.returncode


def run_chain(launcher: Launcher, run_dir: Path, kills: list[Kill], rng: random.Random, launch_seconds: float,
              reference: tuple[list[dict], list[dict]]) -> None:
    """Kill the run once per entry of ``kills`` (until it finishes first), then let it finish and compare."""
    for kill in kills:
        kill_at = None if kill.phase == RANDOM else (rng.choice(PHASES[kill.phase]), rng.randint(1, 3))
        delay = rng.uniform(0.3, launch_seconds) if kill.phase == RANDOM else None
        code = finish(launcher.start(run_dir, kill_at), delay)
        kill.tried = True
        kill.generations_done = len(read_rows(run_dir / "logbook.jsonl"))
        if code != -signal.SIGKILL:
            if code != 0:
                raise SystemExit(f"chain {kill.chain}: exit code {code}; see {run_dir.with_suffix('.log')}")
            break  # the run finished before this kill could land
        kill.landed = True
    code = finish(launcher.start(run_dir, None), None)
    same = code == 0 and comparable(run_dir) == reference
    for kill in kills:
        kill.survived = kill.landed and same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=8, help="chains of kills, half in-process, half with a worker")
    parser.add_argument("--kills-per-chain", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "hook").mkdir()
        (root / "hook" / "sitecustomize.py").write_text(KILL_HOOK)
        all_kills: list[Kill] = []
        for workers in (0, 1):
            config = root / f"workers{workers}.yaml"
            config.write_text(yaml.safe_dump(small_run(workers)))
            launcher = Launcher(root / "hook", config)
            started = time.monotonic()
            reference_dir = root / f"reference{workers}"
            assert finish(launcher.start(reference_dir, None), None) == 0
            launch_seconds = time.monotonic() - started
            reference = comparable(reference_dir)
            for chain in range(args.chains // 2):
                number = workers * (args.chains // 2) + chain
                # each chain but the last of a setup visits every phase once, in a random order;
                # the last kills at random moments
                phases = (rng.sample(list(PHASES), len(PHASES)) if chain < args.chains // 2 - 1
                          else [RANDOM] * len(PHASES))
                kills = [Kill(number, workers, phase) for phase in phases[:args.kills_per_chain]]
                run_chain(launcher, root / f"chain{number}", kills, rng, launch_seconds, reference)
                all_kills += kills
                for kill in kills:
                    print(f"chain {kill.chain} ({'1 worker' if workers else 'in-process'}): kill at {kill.phase:<10} "
                          f"{kill.outcome()}", flush=True)
    landed = [kill for kill in all_kills if kill.landed]
    print(f"\n{sum(kill.survived for kill in landed)} of {len(landed)} kills survived "
          f"({len(all_kills) - len(landed)} of {len(all_kills)} planned kills did not land before their run finished)")
    for phase in [*PHASES, RANDOM]:
        at_phase = [kill for kill in landed if kill.phase == phase]
        in_process = sum(kill.workers == 0 for kill in at_phase)
        print(f"  {phase:<10} {sum(kill.survived for kill in at_phase)} of {len(at_phase)} survived "
              f"(in-process {in_process}, with a worker {len(at_phase) - in_process})")
    if any(not kill.survived for kill in landed):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
