import pytest

from engine.memo import KeptValues


def test_the_oldest_value_goes_first_when_full():
    kept = KeptValues(2)
    made = []
    for key in ("a", "b", "a", "c", "a"):
        kept.get(key, lambda key=key: made.append(key) or key.upper())
    assert made == ["a", "b", "c", "a"]  # "a" was the oldest when "c" came, so it was made again
    assert len(kept) == 2 and "c" in kept and "a" in kept and "b" not in kept


def test_a_failing_make_keeps_nothing():
    kept = KeptValues(1)
    kept.put("a", 1)

    def broken():
        raise OSError("unreadable")

    with pytest.raises(OSError):
        kept.get("b", broken)
    assert kept["a"] == 1 and "b" not in kept


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="limit"):
        KeptValues(0)
