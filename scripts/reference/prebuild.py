#!/usr/bin/python3
"""Builds the slowest torchvision references while Maven compiles (started in the background by scripts/test.sh),
exactly where and as the tests' TorchReference.cached would: toolkit-core/target/NAME, made by
scripts/reference/SCRIPT [ARGS...] DIR under the same lock file (fcntl, which Java's FileLock also uses) and skipped
when the directory's done-file exists. A test that needs a reference before it is ready waits on the lock; one that
finds it done uses it. Failures are left to the tests, which run the script again and report its output.
"""
import fcntl
import os
import re

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
target = os.path.join(root, "toolkit-core", "target")
os.makedirs(target, exist_ok=True)
src = open(os.path.join(root, "toolkit-core/src/test/java/dev/finetune/model/FamilyParityTest.java")).read()
archs = "".join(re.findall(r'"([^"]*)"', src[src.index("String ARCHS ="):src.index(";", src.index("String ARCHS ="))]))
src = open(os.path.join(root, "toolkit-core/src/test/java/dev/finetune/train/FamilyTrainingParityTest.java")).read()
step_archs = "".join(re.findall(r'"([^"]*)"', src[src.index("String ARCHS ="):src.index(";", src.index("String ARCHS ="))]))
src = open(os.path.join(root, "toolkit-core/src/test/java/dev/finetune/testing/Bf16TrainingReference.java")).read()
sizes = re.search(r'String SIZES = "([^"]*)"', src).group(1)
jobs = [("torch-reference", "reference.json", "torch_reference.py", []),
        ("families-reference", "DONE", "families.py", [archs]),
        ("autoaugment-reference", "DONE", "autoaugment_reference.py", []),
        ("update-bn-reference", "DONE", "update_bn_reference.py",
         [os.path.join(target, "families-reference"), "mobilenet_v3_small"]),
        ("family-steps", "DONE", "family_steps.py", ["steps", os.path.join(target, "families-reference"), step_archs]),
        ("bf16-training-reference", "DONE", "bf16_training_reference.py",
         [os.path.join(root, "models", "resnet18-fmnist-a.safetensors"), sizes])]
# Bf16PrefixTest needs PyTorch's bf16 outputs only where the CPU has bf16 (elsewhere it checks the refusal), and
# emulated bf16 would be slow: built last, and only then.
cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
if "avx512_bf16" in cpuinfo or "amx_bf16" in cpuinfo:
    jobs.append(("bf16-reference", "DONE", "bf16_reference.py", [root]))
# Idle OpenMP threads wait passively: these scripts share the two cores with the test JVMs, and libgomp's default
# spinning burns the CPU the others wait for (TorchReference.passiveOpenMpWaits; the same values, less CPU). Set before
# torch is imported: libgomp reads it when it loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Each script runs in a child forked after torch's import, as `python3 SCRIPT ARGS` would (forkserver.py says why).
from forkserver import run  # noqa: E402

for name, done, script, args in jobs:
    out = os.path.join(target, name)
    with open(os.path.join(target, name + ".lock"), "a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, done)):
            run([os.path.join(root, "scripts", "reference", script), *args, out], os.getcwd(), dict(os.environ),
                os.devnull, os.devnull)
