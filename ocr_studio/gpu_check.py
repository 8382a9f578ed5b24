"""``python -m ocr_studio.gpu_check``: one paragraph when PyTorch cannot use the NVIDIA GPU, with
the command that fixes it; nothing when all is well. The launcher runs it beside the server's
start, in the studio's own environment, so the warning is about the torch that will run."""

from __future__ import annotations


def main() -> int:
    from .hardware import gpu_problem

    problem = gpu_problem()
    if problem is not None:
        print(f"GPU WARNING: {problem.what}\nStop OCR Studio, then fix it with:\n\n    {problem.fix}\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
