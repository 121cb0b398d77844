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


def test_sized_values_drop_the_oldest_until_the_new_one_fits():
    kept = KeptValues(9, size=len)
    for key in ("a", "b", "c"):
        kept.put(key, key * 3)  # 9 of 9
    kept.put("d", "dddd")  # needs 4: "a" (then 10 > 9) and "b" go, "c" stays (3 + 4 = 7)
    assert "a" not in kept and "b" not in kept and kept["c"] == "ccc" and kept["d"] == "dddd"
    kept.put("c", "c")  # kept again with its new size, now the newest: 4 + 1
    kept.put("e", "eeee")  # 9: nothing goes
    assert [key for key in "cde" if key in kept] == ["c", "d", "e"]
    kept.put("f", "ff")  # 11 > 9: "d" is now the oldest
    assert [key for key in "cdef" if key in kept] == ["c", "e", "f"]


def test_a_value_larger_than_the_limit_is_returned_and_not_kept():
    kept = KeptValues(4, size=len)
    kept.put("a", "aa")
    assert kept.get("big", lambda: "x" * 5) == "xxxxx"
    assert "big" not in kept and kept["a"] == "aa"  # nothing was dropped for it either
