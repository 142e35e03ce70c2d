"""The collector pause: nested blocks resume it once, at the end of the last; a collector that
was off stays off; an exception still resumes it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from sync import gcpause


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_nested_blocks_resume_the_collector_once_at_the_end() -> None:
    with gcpause.paused():
        assert not gc.isenabled()
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_still_resumes_it_and_a_decorated_function_pauses_it() -> None:
    @gcpause.paused()
    def work() -> bool:
        return gc.isenabled()

    assert work() is False and gc.isenabled()
    with pytest.raises(RuntimeError), gcpause.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with gcpause.paused():
        pass
    assert not gc.isenabled()


def test_blocks_in_two_threads_resume_it_only_when_both_end() -> None:
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gcpause.paused():
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(5)
    with gcpause.paused():
        pass
    assert not gc.isenabled()  # the other thread's block is still running
    release.set()
    thread.join(5)
    assert gc.isenabled()
