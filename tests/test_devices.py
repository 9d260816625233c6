import ctypes
import platform

import pytest
import torch

from mnistlab.devices import (
    describe_cpuinfo,
    device_description,
    environment,
    machine_summary,
    process_place,
    release_free_memory,
    resolve_device,
)
from mnistlab.errors import MnistlabError


def test_auto_is_a_gpu_only_where_there_is_one():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(MnistlabError, match="CUDA is not available here; use --device cpu or auto"):
        resolve_device("cuda")


def test_a_launchers_variables_give_the_process_its_place(monkeypatch):
    assert process_place().world_size == 1 and process_place().rank == 0
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    place = process_place()
    assert (place.rank, place.local_rank, place.world_size) == (3, 1, 4)
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(MnistlabError, match="WORLD_SIZE must be whole numbers"):
        process_place()


def test_what_a_figure_ran_on_is_named():
    assert device_description("cpu") == f"cpu, {torch.get_num_threads()} thread" + \
        ("s" if torch.get_num_threads() > 1 else "")
    assert f"torch {torch.__version__}" in machine_summary()
    env = environment("cpu")
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["cpu"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_freed_heap_memory_is_handed_back():
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(200)]  # 12.5 MB of heap (below the mmap threshold)
    for block in blocks:
        libc.free(block)
    assert release_free_memory(torch.device("cpu")) is True


def test_the_cpu_is_named_with_its_family_and_bf16_units():
    """A VM may call three generations "AMD EPYC": the family, the model and the bf16 units tell them apart."""
    def cpuinfo(flags: str, name: str = "AMD EPYC", family: str = "26") -> str:
        block = f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: 2\n" \
                f"model name\t: {name}\nflags\t\t: fpu {flags} sse2\n"
        return block + "\n" + block.replace("processor\t: 0", "processor\t: 1").replace(flags, "")

    assert describe_cpuinfo(cpuinfo("avx512f avx512_bf16")) == "AMD EPYC [family 26 model 2, AVX-512 bf16]"
    assert describe_cpuinfo(cpuinfo("avx2", family="25")) == "AMD EPYC [family 25 model 2, no bf16]"
    xeon = cpuinfo("avx512_bf16 amx_bf16 amx_tile", "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "6")
    assert describe_cpuinfo(xeon) == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz [family 6 model 2, AMX bf16]"
