"""``python -m ocr_studio.gpu_check``: one paragraph when PyTorch cannot use the NVIDIA GPU, with
the command that fixes it; nothing when all is well. The launcher runs it beside the server's
start, in the studio's own environment, so the warning is about the torch that will run. It
speaks the launcher's language (``bootstrap.language()``: the same answer the launcher got)."""

from __future__ import annotations


def main() -> int:
    from . import i18n
    from .bootstrap import language
    from .hardware import gpu_problem

    problem = gpu_problem()
    if problem is not None:
        with i18n.use_language(language()):
            print(i18n.t("launcher.gpu.warning", what=problem.why, fix=problem.remedy), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
