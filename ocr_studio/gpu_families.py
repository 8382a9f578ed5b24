"""The NVIDIA GPU families as data: compute capability → family name and what the runtime
profile may use on it (bf16, fp16, TF32 matmuls, FlashAttention 2).

Why a table: ``hardware.choose_profile`` used to compare capabilities in code in several places;
a new architecture is now one row. Rows are tried in order; the first whose capability range
holds the GPU's is its family. Facts: NVIDIA's CUDA compute capability list; bf16 and TF32 tensor
cores from sm_80 (Ampere), fast fp16 from sm_70 (Volta); FlashAttention 2's wheels build for
sm_80 to sm_90 (Ampere, Ada, Hopper).
"""

from __future__ import annotations

from dataclasses import dataclass

Capability = tuple[int, int]


@dataclass(frozen=True)
class GpuFamily:
    name: str  # shown in the profile, the sidebar and doctor, followed by "(sm_XY)"
    first: Capability  # lowest compute capability of the family
    last: Capability  # highest (inclusive)
    bf16: bool  # bfloat16 is the automatic dtype
    fp16: bool  # float16 is fast (the automatic dtype where bf16 is not)
    tf32: bool  # float32 matmuls may use TF32 tensor cores
    flash_attention: bool  # FlashAttention 2 runs here

    def holds(self, capability: Capability) -> bool:
        return self.first <= capability <= self.last


FAMILIES: tuple[GpuFamily, ...] = (
    GpuFamily("Newer than Blackwell", (13, 0), (99, 99), bf16=True, fp16=True, tf32=True, flash_attention=False),
    GpuFamily("Blackwell consumer", (12, 0), (12, 99), bf16=True, fp16=True, tf32=True, flash_attention=False),
    GpuFamily("Blackwell datacenter", (10, 0), (11, 99), bf16=True, fp16=True, tf32=True, flash_attention=False),
    GpuFamily("Hopper", (9, 0), (9, 99), bf16=True, fp16=True, tf32=True, flash_attention=True),
    GpuFamily("Ada", (8, 9), (8, 9), bf16=True, fp16=True, tf32=True, flash_attention=True),
    GpuFamily("Ampere", (8, 0), (8, 99), bf16=True, fp16=True, tf32=True, flash_attention=True),
    GpuFamily("Turing", (7, 5), (7, 5), bf16=False, fp16=True, tf32=False, flash_attention=False),
    GpuFamily("Volta", (7, 0), (7, 99), bf16=False, fp16=True, tf32=False, flash_attention=False),
    GpuFamily("Pascal", (6, 0), (6, 99), bf16=False, fp16=False, tf32=False, flash_attention=False),
    GpuFamily("Maxwell or older", (0, 0), (5, 99), bf16=False, fp16=False, tf32=False, flash_attention=False),
)


def family(capability: Capability) -> GpuFamily:
    """The family row of a compute capability (the oldest row for anything below the table)."""
    return next((row for row in FAMILIES if row.holds(capability)), FAMILIES[-1])


def family_name(capability: Capability) -> str:
    """The family and the capability, as the profile names the GPU: "Hopper (sm_90)"."""
    major, minor = capability
    return f"{family(capability).name} (sm_{major}{minor})"
