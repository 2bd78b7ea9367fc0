"""Execute every notebook here in place, so that it is stored with its outputs.

Run from the repository: ``python notebooks/execute.py``. The kernel is this interpreter
(``sys.executable``), importing the mlmwrap of this checkout. tests/test_notebooks.py runs the
notebooks again and checks that the stored outputs are current.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

HERE = Path(__file__).resolve().parent


def execute(path: Path, kernel_dir: str) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    ksm = KernelSpecManager(kernel_dirs=[kernel_dir], ensure_native_kernel=False)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=ksm)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def main() -> None:
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory() as kernels:
        spec = Path(kernels) / "python3"
        spec.mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
        )
        for path in sorted(HERE.glob("*.ipynb")):
            nb = execute(path, kernels)
            nb.metadata.pop("widgets", None)
            nbformat.write(nb, path)
            print(f"executed {path.name}")


if __name__ == "__main__":
    main()
