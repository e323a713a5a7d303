"""background.Background: work in a thread, its value or its exception handed to the caller."""

import threading

import pytest

from mercurio_migrate.background import Background


def test_result_is_the_value_and_the_work_ran_in_another_thread():
    main = threading.get_ident()
    job = Background(lambda: threading.get_ident())
    assert job.result() != main


def test_result_raises_what_the_work_raised():
    def fail():
        raise ValueError("bad configuration")

    with pytest.raises(ValueError, match="bad configuration"):
        Background(fail).result()


def test_discard_waits_and_releases_the_value_but_not_after_an_error():
    released, gate = [], threading.Event()

    def slow():
        gate.wait(5)
        return "connection"

    job = Background(slow)
    gate.set()
    job.discard(released.append)
    assert released == ["connection"]
    assert not job._thread.is_alive()  # joined: a fork may follow

    def fail():
        raise OSError("unreachable")

    Background(fail).discard(released.append)  # nothing raised, nothing released
    assert released == ["connection"]
