"""The decoder's parts, each alone: the block pool's books and the one stop check every path uses."""

from __future__ import annotations

import torch

from ocr_studio.models.generation import GenerationConfig, PageRequest, RepetitionGuard
from ocr_studio.models.generation.block_pool import BlockPool
from ocr_studio.models.generation.stopping import SlotPage, check_row, is_check_point
from ocr_studio.models.paged_attention import BLOCK

EOS = 9


def _config(**kwargs) -> GenerationConfig:
    return GenerationConfig(max_new_tokens=40, eos_token_ids=(EOS,), pad_token_id=0, check_every=4, **kwargs)


def test_the_pool_lends_the_lowest_blocks_and_never_block_zero():
    pool = BlockPool(slots=2, cache_len=4 * BLOCK, pool_blocks=5, device=torch.device("cpu"))
    assert pool.reserve(0, BLOCK + 1)  # two blocks
    assert pool.owned[0] == [1, 2] and pool.table_host[0, :2].tolist() == [1, 2]
    assert pool.reserve(1, 3 * BLOCK)
    assert pool.owned[1] == [3, 4, 5] and pool.spare_blocks() == 0
    assert 0 not in pool.owned[0] + pool.owned[1]


def test_a_short_pool_lends_nothing_and_a_released_row_gives_every_block_back():
    pool = BlockPool(slots=2, cache_len=4 * BLOCK, pool_blocks=3, device=torch.device("cpu"))
    assert pool.reserve(0, 2 * BLOCK)
    assert not pool.reserve(1, 2 * BLOCK)  # two wanted, one spare: none lent
    assert pool.owned[1] == [] and pool.spare_blocks() == 1
    pool.release(0)
    assert pool.spare_blocks() == 3 and pool.table_host[0].tolist() == [0, 0, 0, 0]
    assert pool.reserve(1, 2 * BLOCK) and pool.owned[1] == [1, 2]  # the lowest again


def test_the_table_reaches_the_device_only_when_it_changed_and_widening_keeps_the_blocks():
    pool = BlockPool(slots=1, cache_len=2 * BLOCK, pool_blocks=4, device=torch.device("cpu"))
    pool.reserve(0, 2 * BLOCK)
    pool.send_table()
    assert pool.table.tolist() == [[1, 2]] and not pool.table_changed
    assert pool.reserve(0, 2 * BLOCK) and not pool.table_changed  # nothing new to lend
    assert pool.widen(4 * BLOCK) and pool.width == 4 and pool.cache_len == 4 * BLOCK
    assert not pool.widen(3 * BLOCK)  # narrower: unchanged
    pool.send_table()
    assert pool.table.tolist() == [[1, 2, 0, 0]]
    assert pool.reserve(0, 4 * BLOCK) and pool.owned[0] == [1, 2, 3, 4]


def test_a_row_stops_at_eos_at_a_loop_or_at_its_budget_and_runs_otherwise():
    config = _config(repetition=RepetitionGuard(max_period=2, min_span=8, min_repeats=6))
    assert check_row([1, 2, EOS, 3], 4, 40, config) == ([1, 2], "eos")
    assert check_row([1, 2, 3], 3, 3, config) == ([1, 2, 3], "max_tokens")
    assert check_row([1, 2, 3], 3, 40, config) == ([1, 2, 3], None)
    kept, reason = check_row([5] * 12, 12, 40, config)
    assert reason == "repetition" and len(kept) < 12


def test_a_page_is_checked_at_the_points_the_static_loop_checks():
    assert [p for p in range(1, 11) if is_check_point(p, 10, 4)] == [1, 4, 8, 10]
    seen: list[int] = []
    page = SlotPage(PageRequest("p", {"input_ids": torch.zeros(1, 3, dtype=torch.long)}), 10, [])
    config = _config(repetition=None)
    page.tokens = [1, 2, 3, 4, 5]
    assert page.check(config, lambda key, kept: seen.append(len(kept))) is None
    assert seen == [1, 4] and page.checked == 4
    page.tokens += [6, EOS, 7]
    assert page.check(config, lambda key, kept: seen.append(len(kept))) == "eos"
    assert seen == [1, 4, 6] and page.kept == [1, 2, 3, 4, 5, 6]
