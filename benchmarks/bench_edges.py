"""End-to-end speed and memory of ``convcli edges`` on a 12-megapixel JPEG, against two anchors.

Each contender runs as a whole process, from JPEG on disk to PNG on disk, best of ``--repeat``
runs alternated between the contenders (a noisy minute on a shared machine hits them alike):

- ``convcli edges in.jpg -o out.png`` (grey, Sobel magnitude, 8-bit PNG);
- a plain Python + OpenCV script doing the same: ``cv2.imread`` grey, ``cv2.Sobel`` x and y in
  float32, ``cv2.magnitude``, scaled to 8 bits by the maximum, ``cv2.imwrite``;
- ImageMagick, ``convert in.jpg -morphology Convolve Sobel out.png`` (one Sobel direction,
  clipped: less work than a magnitude, the usual one-liner). Skipped unless ``convert -version``
  says ImageMagick (``/usr/local/bin/convert`` may be a stand-in; then ``/usr/bin/convert``).

Each gets a CPU time too (user + system, all its threads): on a machine that other processes
share, it is what a contender costs, steadier than the wall time. Peak memory of the convcli
process (``ru_maxrss`` of a child) is compared with the size of the image as one float32 plane
(H x W x 4 bytes). Targets: at most 1.2x the OpenCV script's time,
faster than ImageMagick, peak memory at most 6x the float32 plane. Then an in-process breakdown
of one convcli run (decode, filter, encode) shows where the time goes, and the PNG files' sizes.

The children run with their bytecode cached (``PYTHONPYCACHEPREFIX`` in the temporary folder,
``PYTHONDONTWRITEBYTECODE`` removed, one warm-up run each), as an installed tool runs: with
``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` beside the sources, every convcli run
would compile the package first, which an OpenCV script (numpy and cv2 compiled at install) never
pays for.

Run: ``python benchmarks/bench_edges.py [--megapixels 12] [--repeat 3]``. Not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_line

SAMPLE = Path(__file__).resolve().parents[1] / "sample_images" / "chelsea.png"
OPENCV_SCRIPT = """
import sys, cv2
grey = cv2.imread(sys.argv[1], cv2.IMREAD_GRAYSCALE).astype("float32") / 255
gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
magnitude = cv2.magnitude(gx, gy)
cv2.imwrite(sys.argv[2], cv2.convertScaleAbs(magnitude, alpha=255 / float(magnitude.max())))
"""
PEAK_WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
    "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def make_photo(folder: Path, megapixels: float) -> tuple[Path, int, int]:
    """The sample photo upscaled to about ``megapixels`` (4:3), saved as a quality-90 JPEG."""
    from PIL import Image

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = width * 3 // 4
    path = folder / "photo.jpg"
    with Image.open(SAMPLE) as im:
        im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
    return path, height, width


def imagemagick() -> str | None:
    """Path of a real ImageMagick ``convert``, or None."""
    for candidate in (shutil.which("convert"), "/usr/bin/convert"):
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run([candidate, "-version"], capture_output=True, text=True)
        if probe.returncode == 0 and "ImageMagick" in probe.stdout:
            return candidate
    return None


def best_times(commands: dict[str, list[str]], repeat: int, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Best wall time and best CPU time (user + system, all threads) of each command over
    ``repeat`` rounds, the commands alternated in each round, after one warm-up run each
    (bytecode cached, files in the page cache). On a busy machine the CPU time says what a
    contender costs, the wall time what it gets from the cores left to it."""
    best = {name: (float("inf"), float("inf")) for name in commands}
    for round_ in range(repeat + 1):
        for name, command in commands.items():
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            if round_:
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def breakdown(photo: Path, out: Path) -> None:
    """Where one convcli run spends its time, in a process that has not touched the image yet
    (the first pass over fresh memory pays for page faults, as the command does)."""
    from convcli.images.gradients import display_reference, edge_filter, edge_maps
    from convcli.images.read import read_image
    from convcli.images.write import write_image

    marks = [("start", time.perf_counter())]
    image = read_image(photo)
    marks.append(("decode + grey + float32 (read_image)", time.perf_counter()))
    maps = edge_maps(image.array, edge_filter("sobel"))
    marks.append(("Sobel magnitude (edge_maps)", time.perf_counter()))
    ref = display_reference(maps.magnitude)
    marks.append(("99.5th percentile (display_reference)", time.perf_counter()))
    write_image(out, maps.magnitude, scale="abs", reference=ref)
    marks.append(("scale + PNG encode (write_image)", time.perf_counter()))
    for (_, before), (label, after) in zip(marks, marks[1:]):
        print(f"  {label:40s} {after - before:6.3f} s")
    print(f"  (on {len(os.sched_getaffinity(0))} cores)")


def load() -> str:
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import cv2  # noqa: F401  (named in the header; the OpenCV script runs in a process of its own)

    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        photo, h, w = make_photo(folder, args.megapixels)
        script = folder / "opencv_edges.py"
        script.write_text(OPENCV_SCRIPT)
        print(f"input: {photo.name}, {w}x{h} ({h * w / 1e6:.1f} MP), JPEG {photo.stat().st_size / 1e6:.1f} MB")
        convcli = [sys.executable, "-m", "convcli", "edges", str(photo), "-o", str(folder / "convcli.png")]
        commands = {
            "convcli edges": convcli,
            "OpenCV script": [sys.executable, str(script), str(photo), str(folder / "cv.png")],
        }
        magick = imagemagick()
        if magick:
            im = [magick, str(photo), "-morphology", "Convolve", "Sobel", str(folder / "im.png")]
            commands["ImageMagick convert"] = im
        runs = best_times(commands, args.repeat, env)
        ours, our_cpu = runs["convcli edges"]
        print(f"\nwhole process, best of {args.repeat} alternated runs: wall time, CPU time (all threads)")
        for name, (seconds, cpu) in runs.items():
            print(
                f"  {name:22s} {seconds:6.2f} s   convcli / this = {ours / seconds:4.2f}x"
                f"   CPU {cpu:5.2f} s   convcli / this = {our_cpu / cpu:4.2f}x"
            )
        if not magick:
            print("  ImageMagick: not installed (apt-get install imagemagick), skipped")
        print(f"targets: convcli / OpenCV script <= 1.2x; convcli / ImageMagick < 1; load average now {load()}")
        mb = [(folder / name).stat().st_size / 1e6 for name in ("convcli.png", "cv.png")]
        print(f"PNG sizes: convcli {mb[0]:.2f} MB, OpenCV {mb[1]:.2f} MB")
        peak = subprocess.run(
            [sys.executable, "-c", PEAK_WRAPPER, *convcli], check=True, capture_output=True, text=True, env=env
        )
        peak_mb = int(peak.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
        plane_mb = h * w * 4 / 2**20
        print(
            f"\npeak memory of convcli edges: {peak_mb:.0f} MiB = {peak_mb / plane_mb:.1f}x the float32 "
            f"grey plane ({plane_mb:.0f} MiB), {peak_mb / (3 * plane_mb):.1f}x the float32 RGB volume"
            " (target <= 6x the plane)"
        )
        print("\nin-process breakdown of one convcli run:")
        breakdown(photo, folder / "breakdown.png")


if __name__ == "__main__":
    main()
