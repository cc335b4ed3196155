# The simulated board's flash: a 2 MB littlefs image on a block device that counts bytes
# written and each block's erases (tools/board_start.py --flash), and the wear of the
# journal at 1-minute readings with 15-minute uploads (tools/simboard.py).
import json
import os
import subprocess

from tools import simboard
from tools.board_files import LIB, ROOT

BOARD_START = os.path.join(ROOT, "tools", "board_start.py")
WRITE_A_FILE = "with open('data', 'ab') as f:\n    f.write(b'x' * 5000)\nprint(len(open('data').read()))\n"


def _board(cwd, *options):
    done = subprocess.run([simboard.MICROPYTHON, "-X", "heapsize=256K", BOARD_START, "--lib", LIB] + list(options),
                          cwd=cwd, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_the_flash_image_keeps_its_files_and_its_counts_across_resets(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "boot.py").write_text(WRITE_A_FILE)
    (host / "main.py").write_text("import os\nprint(os.getcwd(), sorted(os.listdir()))\n")
    image = str(tmp_path / "flash.img")
    assert _board(str(host), "--flash", image) == "5000\n/flash ['boot.py', 'data', 'main.py']\n"
    assert _board(str(host), "--flash", image).startswith("10000\n")  # a reset: same flash
    assert not (host / "data").exists()  # the host folder only seeded the new image
    out = tmp_path / "out"
    out.mkdir()
    wear = json.loads(_board(str(host), "--flash", image, "--unload", str(out)))
    assert (out / "data").read_bytes() == b"x" * 10000 and (out / "boot.py").read_text() == WRITE_A_FILE
    erases = wear["erases"]
    assert len(erases) == 512 and os.path.getsize(image) == 512 * 4096 + 8 + 4 * 512
    # the format and the seeding are not counted; two appends of 5000 bytes are, in full
    assert 10000 <= wear["bytes_written"] < 40000 and 3 <= sum(erases) < 30 and max(erases) <= 4


def test_the_journal_lets_a_2_mb_flash_outlive_20_years_of_1_minute_readings(tmp_path):
    report = str(tmp_path / "figures.json")
    # the heap of make soak-decade, whose windows carry 15 readings too: at the 192K default
    # a loaded machine's first window has run out of memory (a round holds 4 batches)
    code = simboard.main(["--runtime", "micropython", "--cycles", "12", "--readings-per-window", "15",
                          "--heap", "320K", "--time-scale", "0", "--quiet", "--json", report])
    with open(report) as f:
        figures = json.load(f)
    assert code == 0 and figures["readings_lost"] == 0 and figures["readings_delivered"] == 180
    assert figures["flash_erases"] == round(figures["flash_erases_per_window"] * 12)
    # an append rewrites the journal's last block: about one erase and 600 bytes a reading
    assert 0.5 <= figures["flash_erases_per_reading"] <= 1.5 and figures["flash_bytes_per_reading"] <= 1024
    assert figures["flash_life_years_levelled"] >= 20, figures
    block, count = figures["flash_most_erased_block"]
    assert 0 <= block < 512 and 1 <= count <= figures["flash_erases"] and figures["flash_blocks_erased"] > 20


def test_a_cpython_board_keeps_a_host_folder_and_reports_no_wear(tmp_path):
    report = str(tmp_path / "figures.json")
    assert simboard.main(["--runtime", "cpython", "--cycles", "1", "--time-scale", "0", "--json", report]) == 0
    with open(report) as f:
        assert "flash_erases" not in json.load(f)
