"""What a recipe's data path will do (tokens, blocks, steps per process) and how fast one process drives it."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class DataPlan:
    """The data a run consumes: ``steps`` optimizer steps of ``blocks_per_step`` blocks over all processes."""

    block_size: int
    blocks_per_step: int
    steps: int
    world_size: int = 1
    n_shards: int = 1
    held_out_blocks: int = 0

    @property
    def blocks(self) -> int:
        return self.blocks_per_step * self.steps

    @property
    def tokens(self) -> int:
        return self.blocks * self.block_size

    @property
    def blocks_per_rank(self) -> int:
        return self.blocks // self.world_size

    def describe(self) -> str:
        shards = self.n_shards / self.world_size
        return "\n".join([
            f"steps: {self.steps:,} of {self.blocks_per_step:,} blocks x {self.block_size:,} tokens "
            f"= {self.blocks_per_step * self.block_size:,} tokens per step",
            f"training: {self.blocks:,} blocks = {self.tokens:,} tokens; held out: {self.held_out_blocks:,} blocks",
            f"processes: {self.world_size}, each {self.blocks_per_rank:,} blocks "
            f"({self.blocks_per_rank * self.block_size:,} tokens) from {shards:g} of {self.n_shards} shards",
        ])


@dataclass(frozen=True)
class StreamMeasurement:
    """One process driving a block stream: wall times, throughput and the process's peak resident memory."""

    blocks: int
    tokens: int
    first_block_seconds: float
    seconds: float
    peak_rss_mib: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")

    def describe(self) -> str:
        return (f"{self.blocks:,} blocks ({self.tokens:,} tokens) in {self.seconds:.2f} s: "
                f"{self.tokens_per_second:,.0f} tokens/s; first block after {self.first_block_seconds:.2f} s; "
                f"peak RSS {self.peak_rss_mib:,.0f} MiB")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def measure_stream(blocks: Iterable[dict], n_blocks: int) -> StreamMeasurement:
    """Pull ``n_blocks`` blocks (or all there are) from a stream, timing the first and the whole."""
    start = time.perf_counter()
    first = 0.0
    count = tokens = 0
    for row in blocks:
        if count == 0:
            first = time.perf_counter() - start
        count += 1
        tokens += len(row["input_ids"])
        if count == n_blocks:
            break
    return StreamMeasurement(count, tokens, first, time.perf_counter() - start, peak_rss_mib())
