"""Prints a short, path-safe name of this machine's compute device (bench/results/<machine>/)."""
import platform
import re


def machine_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return re.sub(r"[^A-Za-z0-9]+", "_", torch.cuda.get_device_name(0)).strip("_")
    except ImportError:
        pass
    import os

    return f"cpu-{platform.machine()}-{os.cpu_count()}cores"


if __name__ == "__main__":
    print(machine_name())
