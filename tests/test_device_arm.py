"""Arm boards as edgetune sees them, from recorded /proc/cpuinfo and sysfs texts of real boards (so these
assertions hold on any machine): core kinds, big.LITTLE clusters, features, and emulation's foreign cpuinfo."""

from pathlib import Path

import pytest

from edgetune.device import arm
from edgetune.device import cpu as device

BOARDS = Path(__file__).parent / "boards"


def sysfs_with_capacities(tmp_path, board):
    f = BOARDS / f"{board}.capacity"
    if f.is_file():
        for cpu, cap in enumerate(f.read_text().split()):
            (tmp_path / f"cpu{cpu}").mkdir(parents=True)
            (tmp_path / f"cpu{cpu}" / "cpu_capacity").write_text(cap + "\n")
    return str(tmp_path)


def fingerprint_of(tmp_path, board, caps=None, usable=None):
    text = (BOARDS / f"{board}.cpuinfo").read_text()
    return device.arm_fingerprint(text, "aarch64", sysfs_with_capacities(tmp_path, board), caps, usable), text


@pytest.mark.parametrize(("board", "cpu", "cores", "has", "lacks", "name"), [
    ("rpi4", "4x Cortex-A72", 4, {"asimd", "neon"}, {"asimddp", "asimdhp", "i8mm", "sve"},
     "Raspberry Pi 4 Model B Rev 1.1"),
    ("rpi5", "4x Cortex-A76", 4, {"asimd", "asimddp", "asimdhp"}, {"i8mm", "bf16", "sve"},
     "Raspberry Pi 5 Model B Rev 1.0"),
    ("rk3588", "4x Cortex-A55 + 4x Cortex-A76", 8, {"asimddp", "asimdhp"}, {"i8mm", "sve"}, ""),
    ("jetson-orin", "12x Cortex-A78AE", 12, {"asimddp", "asimdhp"}, {"sve", "i8mm"}, ""),
])
def test_real_boards(tmp_path, board, cpu, cores, has, lacks, name):
    fp, text = fingerprint_of(tmp_path, board, usable=set(range(cores)))
    assert fp["cpu"] == cpu and fp["cores"] == cores
    assert has <= set(fp["flags"]) and not lacks & set(fp["flags"])
    assert arm.board(text, device_tree=str(tmp_path / "no-device-tree")) == name
    feats = device.features(fp)
    assert feats["NEON"] and feats["dot-product"] == ("asimddp" in has)


def test_big_little_clusters_slowest_first(tmp_path):
    fp, _ = fingerprint_of(tmp_path, "rk3588")
    assert fp["clusters"] == [{"core": "Cortex-A55", "cpus": [0, 1, 2, 3], "capacity": 414},
                              {"core": "Cortex-A76", "cpus": [4, 5, 6, 7], "capacity": 1024}]
    big_only, _ = fingerprint_of(tmp_path / "b", "rk3588", usable={6, 7})  # a process pinned to two big cores
    assert big_only["cpu"] == "2x Cortex-A76" and big_only["cores"] == 2


def test_auxiliary_vector_wins_over_cpuinfo(tmp_path):
    """qemu's cortex-a76 model: HWCAP 0x119ffb, HWCAP2 0 (as its getauxval reports); `max` adds i8mm/bf16/sve."""
    a76 = arm.decode_hwcaps(0x119FFB, 0)
    assert {"fp", "asimd", "asimdhp", "asimddp", "atomics"} <= a76 and not {"sve", "i8mm", "bf16"} & a76
    mx = arm.decode_hwcaps(0xECFFFFFB, 0x7F877FFF)
    assert {"sve", "sve2", "i8mm", "bf16", "asimddp"} <= mx
    fp, _ = fingerprint_of(tmp_path, "rpi4", caps=mx)
    assert {"i8mm", "bf16", "sve"} <= set(fp["flags"])


def test_emulated_guest_sees_the_hosts_x86_cpuinfo(tmp_path):
    x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t: avx2\n\n"
    fp = device.arm_fingerprint(x86, "aarch64", str(tmp_path), arm.decode_hwcaps(0x119FFB, 0), {0, 1})
    assert fp["cpu"].startswith("unnamed Arm CPU") and "emulated" in fp["cpu"]
    assert "avx2" not in fp["flags"] and "asimddp" in fp["flags"] and fp["clusters"] == []


def test_unknown_implementer_is_named_by_its_numbers():
    block = {"processor": "0", "cpu implementer": "0x51", "cpu part": "0x802"}
    assert arm.core_name(block) == "implementer 0x51 part 0x802"
    assert arm.core_name({"processor": "0", "vendor_id": "AuthenticAMD"}) == ""
