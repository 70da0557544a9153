"""Running the app's timers (``@app.timer``, ``@app.crontab``) and tasks (``@app.task``)
in the worker: when each runs next, and how its function is called (with the app if it
takes an argument, as Faust's)."""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio

from streamkit.app import App, Task, Timer

logger = logging.getLogger("streamkit.worker")


async def run_timer(timer: Timer, app: App, is_leader: Callable[[], bool]) -> None:
    """Call ``timer``'s function at each of its times, forever; with ``on_leader``
    only while ``is_leader()``. What it raises is logged and counted."""
    while True:
        await anyio.sleep(seconds_until_next(timer))
        if timer.on_leader and not is_leader():
            continue
        try:
            result = call_with_app(timer.fun, app)
            if inspect.isawaitable(result):
                await result
            timer.runs += 1
        except Exception:
            timer.errors += 1
            logger.exception("timer %s raised", timer.name)


async def run_task(task: Task, app: App) -> None:
    """Run ``task`` once; what it raises is logged."""
    try:
        result = call_with_app(task.fun, app)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("task %s raised", task.name)


def seconds_until_next(timer: Timer) -> float:
    """Seconds from now to the timer's next run (its interval, or its cron's next)."""
    if timer.interval is not None:
        return timer.interval
    from croniter import croniter
    now = datetime.now(timer.timezone) if timer.timezone else datetime.now()
    following: datetime = croniter(timer.cron, now).get_next(datetime)
    return max(0.0, (following - now).total_seconds())


def call_with_app(fun: Any, app: App) -> Any:
    """``fun(app)`` if ``fun`` takes an argument, else ``fun()``."""
    try:
        takes_app = bool(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        takes_app = False
    return fun(app) if takes_app else fun()
