"""``ral export``, ``ral configs`` and ``ral data medmnist``: what leaves the project (a deployable model,
the bundled configs) and what enters it (MedMNIST sets); flags derived from the functions' signatures."""

from __future__ import annotations

from importlib.resources import files

from pydantic import Field
from pydantic_settings import CliPositionalArg

from ral.cli.command import Command, from_function
from ral.data.medmnist import write_medmnist
from ral.engine.export import export


class _Export(Command):
    """a checkpoint as model.onnx / model.ts / model.safetensors with model.json and model_card.md

    The exported ONNX model runs without ral (onnxruntime); `ral predict --model DIR` runs it.
    """

    def cli_cmd(self) -> None:
        paths = export(**self.arguments())
        print("wrote " + ", ".join(str(p) for p in paths.values()))


ExportCommand = from_function(export, _Export, positional=())


def bundled_configs() -> dict[str, str]:
    """``{name: YAML text}`` of the configs shipped in the package (src/ral/configs; configs/ in a clone)."""
    folder = files("ral") / "configs"
    found = {entry.name.removesuffix(".yaml"): entry for entry in folder.iterdir() if entry.name.endswith(".yaml")}
    return {name: found[name].read_text(encoding="utf-8") for name in sorted(found)}


class ConfigsCommand(Command):
    """list the bundled configs, or print one (ral configs NAME > my.yaml)

    The configs ship with the package; in a clone they are the files of configs/.
    """

    name: CliPositionalArg[str | None] = Field(None, description="a config to print (without .yaml)")

    def cli_cmd(self) -> None:
        configs = bundled_configs()
        if self.name is None:
            for name, text in configs.items():
                comment = next((line[1:].strip() for line in text.splitlines() if line.startswith("#")), "")
                print(f"{name:28s} {comment}")
            return
        name = self.name.removesuffix(".yaml")
        if name not in configs:
            raise ValueError(f"no bundled config {self.name!r}; choose one of {sorted(configs)}")
        print(configs[name], end="")


class _Medmnist(Command):
    """write a MedMNIST set (chestmnist, dermamnist, retinamnist) as PNGs + train/val/test CSVs

    Reads a local MedMNIST(+) .npz (--npz), or fetches the set through the medmnist package when it is installed.
    """

    def cli_cmd(self) -> None:
        folder = write_medmnist(**self.arguments())
        print(f"wrote {folder}/train.csv, val.csv, test.csv, dataset.json and {folder}/images/")


MedmnistCommand = from_function(write_medmnist, _Medmnist, positional=("name",))
