"""The device fingerprint and its description: parsed from recorded /proc/cpuinfo and sysfs texts, so the
same assertions hold on any machine; and carried by every measuring command's output."""

import json

from edgetune.cli import main
from edgetune.device import cpu as device

ZEN3_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
stepping\t: 1
flags\t\t: fpu sse4_2 avx f16c fma avx2

processor\t: 1
vendor_id\t: AuthenticAMD
"""
PI5_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
"""


def test_identity_from_recorded_cpuinfo():
    assert device.cpu_identity(ZEN3_CPUINFO) == "AuthenticAMD family 25 model 1 stepping 1"
    assert device.cpu_identity(PI5_CPUINFO) == "implementer 0x41 variant 0x4 part 0xd0b"
    assert device.cpu_identity("") == ""


def test_features_by_family():
    x86 = device.features({"arch": "x86_64", "flags": ["avx2", "fma", "avx512_vnni"]})
    assert x86 == {"AVX2": True, "AVX-512": False, "VNNI": True, "AMX": False, "BF16": False, "FP16": False}
    arm = device.features({"arch": "aarch64", "flags": ["asimd", "asimddp", "asimdhp"]})
    assert arm["NEON"] and arm["dot-product"] and arm["FP16"] and not arm["i8mm"] and not arm["SVE"]


def _fake_sysfs(root, siblings="0-1"):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"),
                                             (3, "Unified", "260M")]):
        d = root / "cpu0" / "cache" / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    topo = root / "cpu0" / "topology"
    topo.mkdir(parents=True)
    (topo / "thread_siblings_list").write_text(siblings + "\n")


def test_caches_and_smt_from_sysfs(tmp_path):
    _fake_sysfs(tmp_path, "0,4")
    assert device.caches(0, str(tmp_path)) == {"L1d": 48 * 1024, "L1i": 32 * 1024, "L2": 2 * 2**20, "L3": 260 * 2**20}
    assert device.smt_threads_per_core(0, str(tmp_path)) == 2
    assert device.caches(7, str(tmp_path)) == {} and device.smt_threads_per_core(7, str(tmp_path)) == 1


def test_describe_is_the_fingerprint_plus_what_a_reader_needs():
    d = device.describe()
    fp = device.fingerprint()
    assert {k: d[k] for k in fp} == fp and {"cpu", "arch", "cores", "flags"} <= set(fp)
    assert d["id"] == device.fingerprint_id() and d["smt_threads_per_core"] >= 1
    line = device.summary_line(d)
    assert d["cpu"] in line and str(d["cores"]) in line


def test_device_command(capsys):
    assert main(["device", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["device"]["id"] == device.fingerprint_id() and "onnxruntime" in out["versions"]
    assert main(["device"]) == 0
    assert "fingerprint id" in capsys.readouterr().out


def test_measuring_commands_carry_the_device(capsys):
    assert main(["run", "mnist_cnn", "--time-cap", "0.1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"]["id"] == device.fingerprint_id()
    assert main(["run", "mnist_cnn", "--time-cap", "0.1"]) == 0
    assert "measured on: " + device.summary_line() in capsys.readouterr().out.replace("\n", "")
