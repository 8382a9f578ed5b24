"""The remote runtime against a real vLLM, and vLLM side by side with our local engine.

Everything runs on one GPU machine, on one set of pages, with the output length forced
(vLLM: ``ignore_eos`` + ``max_tokens``; ours: EOS suppressed, repetition guard off), so
both sides decode the same number of tokens per page. Subcommands, in the order a run uses them:

  checkpoint       full-size random-weight Qwen3-VL-2B (or, --engine dots-ocr, dots.ocr) of the
                   published shape, saved with save_pretrained with its processor and tokenizer (no hub)
  pages            N distinct US-Letter pages at 200 DPI: pages.tiff (one N-page document)
  local            our local engine (get_engine(--engine), today's batching) on the pages;
                   --batch N to choose the batch, otherwise the engine's own choice
  serve / stop     `vllm serve` on the checkpoint in its own process session (returns once it
                   answers) / kill it
  resume           `ocr-studio convert --runtime remote` on pages.tiff: the server is killed
                   mid-job, restarted, the same command resumes; checks every page is there, in order
  remote           the remote runtime (RemoteEngine: what `convert --runtime remote` runs per page)
                   against the server, streaming checked, then timed with forced lengths
  cli              `ocr-studio convert --runtime remote` on pages.tiff, timed end to end
  table            the JSON results as the Markdown table of benchmarks/README.md

    python benchmarks/bench_vllm.py checkpoint && python benchmarks/bench_vllm.py pages
    python benchmarks/bench_vllm.py local                      # --batch N; our side alone, re-runnable
    python benchmarks/bench_vllm.py resume --gpu-memory-utilization U   # leaves the server running
    python benchmarks/bench_vllm.py remote --gpu-memory-utilization U   # then: cli, stop, table
(paths default to /tmp/vllm-bench/{ckpt,pages,work}; results to $OUT or benchmarks/results)

Needs torch, transformers, tokenizers, Pillow, httpx, platformdirs, nvidia-ml-py and (for the
server) vLLM; `convert` also needs what the page worker imports (PyMuPDF). Results of the
H100 run and how vLLM was installed there: benchmarks/README.md, section "vLLM".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

VOCAB_SIZE = 151936  # the published Qwen3-VL vocabulary (config.vocab_size)
PAGE_SIZE = (1700, 2200)  # US Letter at 200 DPI
WORDS = (
    "invoice total amount paragraph section table figure column report summary results method data "
    "analysis sample value error measure page chapter note reference appendix budget quarter revenue"
).split()


# ----------------------------------------------------------------------------- inputs


def served_name(engine: str) -> str:
    return f"{engine}-random"


def save_checkpoint(folder: Path, engine: str = "qwen3-vl") -> None:
    if engine == "dots-ocr":
        return save_dots_checkpoint(folder)
    """Qwen3-VL-2B with random weights (speed and memory do not depend on their values), its
    processor with the engine's page budget (so vLLM profiles a page-sized image), and a
    tokenizer whose vocabulary covers every id the model can emit, so any random token decodes."""
    import torch
    from bench_qwen3_vl import DEFAULT_MAX_PIXELS, FACTOR, build

    from tests.tiny_models import build_qwen3_vl_processor, build_qwen_tokenizer

    started = time.perf_counter()
    model, _ = build(False, "cuda")
    tokenizer = build_qwen_tokenizer(published_ids=True)
    tokenizer.add_tokens([f"<|filler_{i}|>" for i in range(len(tokenizer), VOCAB_SIZE)])
    assert len(tokenizer) == VOCAB_SIZE, len(tokenizer)
    processor = build_qwen3_vl_processor(tokenizer, min_pixels=FACTOR * FACTOR * 4, max_pixels=DEFAULT_MAX_PIXELS)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    print(f"checkpoint saved to {folder} in {time.perf_counter() - started:.0f} s")


def save_dots_checkpoint(folder: Path) -> None:
    """dots.ocr (published shape, our own model class) with random weights, its tokenizer padded
    to the vocabulary and the Qwen2-VL image processor that vLLM's native dots.ocr loads (no hub code)."""
    import torch
    from transformers import GenerationConfig, Qwen2VLImageProcessor

    from ocr_studio.engines.dots_prompts import MAX_PIXELS, MIN_PIXELS
    from ocr_studio.models.dots_ocr import DotsOCRConfig, DotsOCRForCausalLM
    from ocr_studio.models.dots_ocr.processing import END_OF_TEXT, IMAGE_PAD
    from tests.tiny_dots import tiny_tokenizer

    started = time.perf_counter()
    tokenizer = tiny_tokenizer()
    config = DotsOCRConfig(
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_PAD),
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TEXT)],
        pad_token_id=tokenizer.convert_tokens_to_ids(END_OF_TEXT),
    )
    tokenizer.add_tokens([f"<|filler_{i}|>" for i in range(len(tokenizer), config.vocab_size)])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = DotsOCRForCausalLM(config).to(torch.bfloat16).eval()
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(
        patch_size=14, merge_size=2, temporal_patch_size=1, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
    ).save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    print(f"dots.ocr checkpoint saved to {folder} in {time.perf_counter() - started:.0f} s")


def make_pages(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` distinct text pages (distinct, so no cache on either side can reuse one page's work)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    images = []
    for number in range(1, count + 1):
        image = Image.new("RGB", PAGE_SIZE, "white")
        draw = ImageDraw.Draw(image)
        draw.text((100, 80), f"Page {number} (seed {seed})", fill="black")
        for y in range(140, PAGE_SIZE[1] - 100, 30):
            draw.text((100, y), " ".join(rng.choice(WORDS) for _ in range(16)), fill="black")
        images.append(image)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pages-{seed}.tiff"
    images[0].save(path, save_all=True, append_images=images[1:], dpi=(200, 200), compression="tiff_deflate")
    return path


def load_pages(path: Path) -> list:
    from PIL import Image

    from ocr_studio.documents import Page

    pages = []
    with Image.open(path) as tiff:
        for index in range(tiff.n_frames):
            tiff.seek(index)
            pages.append(Page.from_image(tiff.convert("RGB"), number=index + 1, dpi=200))
    return pages


def page_set(folder: Path, count: int, seed: int) -> Path:
    path = folder / f"pages-{seed}.tiff"
    return path if path.exists() else make_pages(folder, count, seed)


# ----------------------------------------------------------------------------- measuring


class MemorySampler:
    """Peak GPU memory in use (all processes, as nvidia-smi counts it), sampled every 50 ms."""

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        self.baseline = self.used()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def total(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).total)

    def name(self) -> str:
        name = self._nvml.nvmlDeviceGetName(self._handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.used())

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.used())


def write_json(results: Path, name: str, data: dict[str, Any]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in data.items() if k not in ("runs_s",)}, indent=None))


def settings_for(args: argparse.Namespace, **extra: Any):
    from ocr_studio.settings import Settings

    values: dict[str, Any] = {
        "workspace": Path(args.work) / "ws",
        "max_new_tokens": args.new_tokens,
        "loop_retry": False,  # a forced-length page is never read twice
    }
    values.update(extra)
    return Settings(**values)


# ----------------------------------------------------------------------------- local side


def force_local_lengths(new_tokens: int, lengths: list[int]) -> None:
    """Every page decodes exactly ``new_tokens``: the engine's GenerationConfig gets its EOS
    suppressed and the repetition guard and loop retry off (as bench_qwen3_vl.py does); the
    tokens each page got are recorded in ``lengths`` to prove it."""
    from ocr_studio.models import generation

    original = generation.GenerationConfig
    if getattr(original, "_forced", False):
        return

    def forced(*args: Any, **kwargs: Any):
        config = original(*args, **kwargs)
        config.suppress_token_ids = tuple(config.eos_token_ids)
        config.repetition = None
        config.loop_retry = None
        return config

    forced._forced = True  # type: ignore[attr-defined]
    generation.GenerationConfig = forced  # type: ignore[misc]
    generate = generation.FastGenerator.generate

    def counted(self, *args: Any, **kwargs: Any):
        result = generate(self, *args, **kwargs)
        if kwargs.get("config", args[1] if len(args) > 1 else None) is not None:
            lengths.extend(len(row) for row in result.tokens)
        return result

    generation.FastGenerator.generate = counted  # type: ignore[method-assign]


def cmd_local(args: argparse.Namespace) -> int:
    import torch

    from ocr_studio.engines import RecognizeRequest, get_engine

    lengths: list[int] = []
    force_local_lengths(args.new_tokens, lengths)
    model_setting = "dots_model" if args.engine == "dots-ocr" else "qwen_model"
    settings = settings_for(args, batch_size=args.batch, **{model_setting: str(args.checkpoint)})
    engine = get_engine(args.engine, settings)
    task = engine.info().default_task  # Qwen3-VL: markdown; dots.ocr: layout + text
    pages = load_pages(page_set(Path(args.pages), args.count, 0))
    warm = load_pages(page_set(Path(args.pages), args.count, 1))
    batch = engine.batch_size(task)
    with MemorySampler() as memory:
        started = time.perf_counter()
        # load, capture and compile for every batch shape the timed run will use
        sizes = sorted({min(batch, args.count - i) for i in range(0, args.count, batch)}, reverse=True)
        for size in sizes:
            engine.recognize(warm[:size], RecognizeRequest(task))
        warm_s = time.perf_counter() - started
        torch.cuda.reset_peak_memory_stats()
        runs = []
        for _ in range(args.repeat):
            lengths.clear()
            started = time.perf_counter()
            results = engine.recognize(pages, RecognizeRequest(task))
            runs.append(time.perf_counter() - started)
    assert [r.page_number for r in results] == list(range(1, args.count + 1))
    best = min(runs)
    data = {
        "side": f"ours (local engine, {args.engine})",
        "gpu": memory.name(),
        "pages": args.count,
        "new_tokens": args.new_tokens,
        "tokens_per_page": sorted(set(lengths)),
        "batch": batch,
        "warm_up_s": round(warm_s, 1),
        "runs_s": [round(s, 3) for s in runs],
        "pages_min": round(60 * args.count / best, 1),
        "pages_min_median": round(60 * args.count / statistics.median(runs), 1),
        "output_tok_s": round(args.count * args.new_tokens / best, 1),  # wall clock, prefill included
        "torch_peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
        "torch_peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 1e9, 2),
        "smi_peak_gb": round(memory.peak / 1e9, 2),
        "smi_baseline_gb": round(memory.baseline / 1e9, 2),
        "gpu_total_gb": round(memory.total() / 1e9, 2),
    }
    write_json(Path(args.results), f"local-{args.engine}-b{batch}-{args.new_tokens}.json", data)
    return 0


# ----------------------------------------------------------------------------- the server


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"})
    # vLLM 0.25.1 imports FlashInfer for its top-k/top-p sampler unless told not to; greedy
    # decoding does not need it, and the wheel set carried to the GPU machine leaves FlashInfer out
    env.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    return env


def serve_command(args: argparse.Namespace, max_num_seqs: int | None) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.cli.main",
        "serve",
        str(args.checkpoint),
        "--served-model-name",
        served_name(args.engine),
        "--port",
        str(args.port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        str(args.max_model_len),
        "--gpu-memory-utilization",
        str(args.gpu_memory_utilization),
        "--limit-mm-per-prompt",
        json.dumps({"image": 1, "video": 0}),
        # distinct pages share nothing; off, so a repeated timing run cannot reuse the first one's work
        "--no-enable-prefix-caching",
        "--mm-processor-cache-gb",
        "0",
    ]
    if max_num_seqs:
        command += ["--max-num-seqs", str(max_num_seqs)]
    return command + list(args.vllm_arg or [])


def start_server(args: argparse.Namespace, log_path: Path, max_num_seqs: int | None = None) -> subprocess.Popen:
    """`vllm serve` in its own process session (it outlives this command on the GPU machine);
    returns once /v1/models answers, or raises with the log's tail."""
    import httpx

    command = serve_command(args, max_num_seqs)
    print("$", " ".join(command), flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - the server keeps writing after we return
    log.write(f"\n$ {' '.join(command)}\n".encode())
    log.flush()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env(), start_new_session=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    (Path(args.work) / "server.pid").write_text(str(process.pid))
    started = time.perf_counter()
    url = f"http://127.0.0.1:{args.port}/v1/models"
    while time.perf_counter() - started < args.start_timeout:
        if process.poll() is not None:
            raise RuntimeError(f"vllm serve exited ({process.returncode}):\n{tail(log_path)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                print(f"server up in {time.perf_counter() - started:.0f} s", flush=True)
                return process
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"vllm serve did not answer in {args.start_timeout} s:\n{tail(log_path)}")


def kill_server(pid: int) -> None:
    """SIGKILL to the server's whole process group (API server and engine core): a crash, not a shutdown."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # reap it if it is our child
    except ChildProcessError:
        pass
    deadline = time.time() + 60
    while time.time() < deadline and _group_alive(pid):
        time.sleep(0.2)
    time.sleep(2)  # the driver frees the memory just after the processes end


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies left for init to reap do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cmd_serve(args: argparse.Namespace) -> int:
    start_server(args, Path(args.results) / "vllm-serve.log", args.max_num_seqs)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    pid_file = Path(args.work) / "server.pid"
    if pid_file.exists():
        kill_server(int(pid_file.read_text()))
    return 0


# ----------------------------------------------------------------------------- remote side


def forced_client(url: str, concurrency: int):
    """The studio's RemoteClient, asking vLLM to ignore EOS so every page gets max_tokens tokens."""
    from ocr_studio.runtime.client import RemoteClient, RemoteConfig

    class ForcedLengthClient(RemoteClient):
        def _complete(self, image, prompt, *, max_tokens, on_text, extra):  # type: ignore[override]
            return super()._complete(
                image, prompt, max_tokens=max_tokens, on_text=on_text, extra={**extra, "ignore_eos": True}
            )

    return ForcedLengthClient(RemoteConfig(base_url=url, concurrency=concurrency, timeout=600.0))


def cmd_remote(args: argparse.Namespace) -> int:
    import httpx

    from ocr_studio.engines import RecognizeRequest, get_engine
    from ocr_studio.runtime.client import image_data_url
    from ocr_studio.runtime.remote import RemoteEngine

    url = f"http://127.0.0.1:{args.port}/v1"
    settings = settings_for(args, runtime="remote", remote_url=url, remote_concurrency=args.concurrency)
    engine = get_engine(args.engine, settings)  # what convert --runtime remote gets: a RemoteEngine
    assert isinstance(engine, RemoteEngine), type(engine)
    client = forced_client(url, args.concurrency)
    engine._client = client
    local = engine.local
    task = engine.info().default_task
    pages = load_pages(page_set(Path(args.pages), args.count, 0))
    warm = load_pages(page_set(Path(args.pages), args.count, 1))
    print(client.health())

    # one request as the client sends it, to read the server's own token count
    prepared = local.prepare(warm[0], RecognizeRequest(task))
    content = [
        {"type": "image_url", "image_url": {"url": image_data_url(prepared.image)}},
        {"type": "text", "text": prepared.prompt},
    ]
    body = {
        "model": served_name(args.engine),
        "messages": [{"role": "user", "content": content}],
        "max_tokens": args.new_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
    }
    usage = httpx.post(url + "/chat/completions", json=body, timeout=600).json().get("usage", {})
    print("usage of one forced request:", usage)

    streamed: list[str] = []
    with MemorySampler() as memory:
        first = engine.recognize(warm[:2], RecognizeRequest(task, on_text=streamed.append))
        runs = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            results = list(engine.recognize_stream(pages, RecognizeRequest(task)))
            runs.append(time.perf_counter() - started)
    assert [r.page_number for r in results] == list(range(1, args.count + 1))
    best = min(runs)
    data = {
        "side": f"vLLM via --runtime remote ({args.engine})",
        "gpu": memory.name(),
        "pages": args.count,
        "new_tokens": args.new_tokens,
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens_one_request": usage.get("completion_tokens"),
        "concurrency": args.concurrency,
        "pages_stopped_at_max_tokens": sum(r.truncated for r in results),
        "streamed_updates": len(streamed),
        "stream_ends_on_final_text": bool(streamed) and streamed[-1] == first[0].raw_text,
        "runs_s": [round(s, 3) for s in runs],
        "pages_min": round(60 * args.count / best, 1),
        "pages_min_median": round(60 * args.count / statistics.median(runs), 1),
        "output_tok_s": round(args.count * args.new_tokens / best, 1),  # wall clock, prefill included
        "smi_peak_gb": round(memory.peak / 1e9, 2),
        "gpu_total_gb": round(memory.total() / 1e9, 2),
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "server": " ".join(serve_command(args, None)[3:]),
    }
    write_json(Path(args.results), f"remote-{args.engine}-c{args.concurrency}-{args.new_tokens}.json", data)
    return 0


# ----------------------------------------------------------------------------- the CLI against the server


def convert_command(args: argparse.Namespace, tiff: Path, out: Path, workspace: Path, config: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ocr_studio",
        "convert",
        str(tiff),
        "-o",
        str(out),
        "--engine",
        args.engine,
        "--runtime",
        "remote",
        "--remote-url",
        f"http://127.0.0.1:{args.port}/v1",
        "--remote-concurrency",
        str(args.concurrency),
        "--workspace",
        str(workspace),
        "--config",
        str(config),
        "--format",
        "md,json",
    ]


def write_config(path: Path, new_tokens: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"max_new_tokens = {new_tokens}\nloop_retry = false\n", encoding="utf-8")
    return path


def page_files(workspace: Path) -> dict[str, str]:
    """page-NNNN.json → sha256 of the job's finished pages on disk."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(workspace.glob("jobs/*/docs/*/page-*.json"))
    }


def exported_pages(out: Path) -> list[dict[str, Any]]:
    found = sorted(out.rglob("*.json"))
    for path in found:
        data = json.loads(path.read_text(encoding="utf-8"))
        pages = data.get("pages") if isinstance(data, dict) else None
        if pages is None and isinstance(data, dict):
            pages = next((d.get("pages") for d in data.get("documents", []) if isinstance(d, dict)), None)
        if pages:
            return pages
    return []


def cmd_resume(args: argparse.Namespace) -> int:
    """The 20-page job: server killed mid-job (SIGKILL), the job fails keeping its finished pages,
    the server restarts, the same command resumes; every page is there, in order, the pages
    finished before the crash untouched."""
    work = Path(args.work) / "resume"
    results = Path(args.results)
    tiff = page_set(Path(args.pages), args.count, 0)
    config = write_config(work / "config.toml", args.resume_tokens)
    workspace, out = work / "ws", work / "out"
    log = results / "vllm-serve.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = convert_command(args, tiff, out, workspace, config)
    report: dict[str, Any] = {
        "command": " ".join(command[1:]),
        "pages": args.count,
        "max_new_tokens": args.resume_tokens,
    }

    # a server that reads few pages at a time, so the job is mid-way for a while
    server = start_server(args, log, max_num_seqs=args.resume_max_num_seqs)
    started = time.perf_counter()
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    done: dict[str, str] = {}
    while first.poll() is None and len(done) < args.kill_after:
        time.sleep(0.1)
        done = page_files(workspace)
    report["pages_done_when_killed"] = len(done)
    report["killed_after_s"] = round(time.perf_counter() - started, 1)
    kill_server(server.pid)
    output, _ = first.communicate(timeout=900)
    report["first_run_rc"] = first.returncode
    report["first_run_s"] = round(time.perf_counter() - started, 1)
    (results / "resume-first-run.txt").write_text(output, encoding="utf-8")
    print(output[-1500:])
    kept = page_files(workspace)
    report["pages_kept_after_failure"] = len(kept)

    server = start_server(args, log)  # restarted with the benchmark's settings; left running
    started = time.perf_counter()
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    report["second_run_rc"] = second.returncode
    report["second_run_s"] = round(time.perf_counter() - started, 1)
    (results / "resume-second-run.txt").write_text(second.stdout + second.stderr, encoding="utf-8")
    print((second.stdout + second.stderr)[-1500:])
    final = page_files(workspace)
    pages = exported_pages(out)
    numbers = [p.get("page_number") for p in pages]
    report["pages_on_disk"] = len(final)
    report["exported_page_numbers"] = numbers
    report["every_page_in_order"] = numbers == list(range(1, args.count + 1))
    report["kept_pages_untouched"] = all(final.get(name) == digest for name, digest in kept.items())
    report["pages_with_text"] = sum(bool(p.get("raw_text")) for p in pages)
    report["pages_stopped_at_max_tokens"] = sum(bool(p.get("truncated")) for p in pages)
    report["ok"] = bool(
        report["first_run_rc"] != 0
        and 0 < report["pages_kept_after_failure"] < args.count
        and report["second_run_rc"] == 0
        and report["every_page_in_order"]
        and report["kept_pages_untouched"]
        and report["pages_with_text"] == args.count
    )
    write_json(results, "resume.json", report)
    return 0 if report["ok"] else 1


def cmd_cli(args: argparse.Namespace) -> int:
    """`ocr-studio convert --runtime remote` on the page set, timed end to end (a fresh workspace)."""
    work = Path(args.work) / f"cli-{time.time_ns()}"
    tiff = page_set(Path(args.pages), args.count, 0)
    config = write_config(work / "config.toml", args.new_tokens)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = convert_command(args, tiff, work / "out", work / "ws", config)
    with MemorySampler() as memory:
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        seconds = time.perf_counter() - started
    pages = exported_pages(work / "out")
    data = {
        "side": "ocr-studio convert --runtime remote (vLLM)",
        "command": " ".join(command[1:]),
        "rc": run.returncode,
        "pages": len(pages),
        "in_order": [p.get("page_number") for p in pages] == list(range(1, args.count + 1)),
        "pages_stopped_at_max_tokens": sum(bool(p.get("truncated")) for p in pages),
        "max_new_tokens": args.new_tokens,
        "seconds": round(seconds, 2),
        "pages_min": round(60 * len(pages) / seconds, 1),
        "smi_peak_gb": round(memory.peak / 1e9, 2),
    }
    (Path(args.results) / "cli-run.txt").write_text(run.stdout + run.stderr, encoding="utf-8")
    write_json(Path(args.results), f"cli-{args.new_tokens}.json", data)
    return 0 if run.returncode == 0 else 1


# ----------------------------------------------------------------------------- table


def cmd_table(args: argparse.Namespace) -> int:
    rows = [
        "| side | pages | tokens/page | batch / concurrency | pages/min | output tok/s (wall) | peak VRAM |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(Path(args.results).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "pages_min" not in data or "side" not in data:
            continue
        flight = data.get("batch") or data.get("concurrency") or ""
        vram = f"{data.get('smi_peak_gb', float('nan')):.1f} GB (nvidia-smi)"
        if "torch_peak_allocated_gb" in data:
            vram += f", {data['torch_peak_allocated_gb']:.1f} GB (torch)"
        rows.append(
            f"| {data['side']} | {data['pages']} | {data.get('new_tokens', data.get('max_new_tokens'))} | {flight} "
            f"| {data['pages_min']} | {data.get('output_tok_s', data.get('decode_tok_s', ''))} | {vram} |"
        )
    print("\n".join(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--engine", choices=("qwen3-vl", "dots-ocr"), default="qwen3-vl")
    common.add_argument(
        "--checkpoint", type=Path, help="default /tmp/vllm-bench/ckpt, /tmp/vllm-bench/dots for dots-ocr"
    )
    common.add_argument("--pages", type=Path, default=Path("/tmp/vllm-bench/pages"))
    common.add_argument("--work", type=Path, default=Path("/tmp/vllm-bench/work"))
    common.add_argument("--results", type=Path, default=Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results"))
    common.add_argument("--count", type=int, default=20, help="pages in the job")
    common.add_argument("--new-tokens", type=int, default=256, help="forced output tokens per page")
    common.add_argument("--repeat", type=int, default=2, help="timed runs (the best is reported)")
    common.add_argument("--port", type=int, default=8000)
    common.add_argument("--concurrency", type=int, default=32, help="--remote-concurrency")
    common.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    common.add_argument("--max-model-len", type=int, default=8192)
    common.add_argument("--max-num-seqs", type=int, default=0)
    common.add_argument("--start-timeout", type=int, default=420)
    common.add_argument("--vllm-arg", action="append", help="one more argument for vllm serve (repeatable)")
    common.add_argument("--batch", type=int, default=0, help="local batch size (0: the engine's choice)")
    common.add_argument("--resume-tokens", type=int, default=256)
    common.add_argument("--resume-max-num-seqs", type=int, default=4)
    common.add_argument("--kill-after", type=int, default=6, help="pages finished before the server is killed")
    for name, func in (
        ("checkpoint", lambda a: save_checkpoint(a.checkpoint, a.engine) or 0),
        ("pages", lambda a: print(make_pages(a.pages, a.count, 0), make_pages(a.pages, a.count, 1)) or 0),
        ("local", cmd_local),
        ("serve", cmd_serve),
        ("stop", cmd_stop),
        ("resume", cmd_resume),
        ("remote", cmd_remote),
        ("cli", cmd_cli),
        ("table", cmd_table),
    ):
        sub.add_parser(name, parents=[common]).set_defaults(func=func)
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        args.checkpoint = Path("/tmp/vllm-bench/dots" if args.engine == "dots-ocr" else "/tmp/vllm-bench/ckpt")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
