"""Bands of rows over threads (convcli.ops.bands): every row in exactly one band, results in row
order, an error in any band raised in the caller."""

import threading

import pytest

from convcli.ops.bands import map_bands, row_bands


@pytest.mark.parametrize("height", [1, 2, 7, 64, 1000])
@pytest.mark.parametrize("parts", [1, 2, 3, 8])
def test_bands_cover_every_row_once(height, parts):
    bands = row_bands(height, parts, min_rows=1)
    assert bands[0][0] == 0 and bands[-1][1] == height
    assert all(end == first for (_, end), (first, _) in zip(bands, bands[1:]))
    sizes = [end - first for first, end in bands]
    assert len(bands) == min(parts, height) and max(sizes) - min(sizes) <= 1


def test_small_images_stay_in_one_band():
    assert row_bands(127, 2, min_rows=64) == [(0, 127)]
    assert row_bands(128, 2, min_rows=64) == [(0, 64), (64, 128)]


def test_results_come_in_row_order_from_several_threads(monkeypatch):
    monkeypatch.setenv("CONVCLI_THREADS", "2")
    together = threading.Barrier(2, timeout=30)  # passed only by two bands running at once
    seen = set()

    def work(first, end):
        seen.add(threading.get_ident())
        together.wait()
        return list(range(first, end))

    results = map_bands(work, 10, threads=4, min_rows=1)
    assert sum(results, []) == list(range(10)) and len(results) == 4
    assert len(seen) == 2


def test_an_error_in_a_band_reaches_the_caller():
    def work(first, end):
        if first > 0:
            raise RuntimeError(f"band at {first}")
        return first

    with pytest.raises(RuntimeError, match="band at"):
        map_bands(work, 10, threads=3, min_rows=1)
