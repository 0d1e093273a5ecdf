"""Every simulator back-end, by name, as plain data: the one place a name gets its meaning.

A ``Backend`` says how to build the calculator (a ``"module:function"`` string, imported only
when a calculator is built), whether there is a batched form, whether each structure runs in
a child process, whether its energies sit on the Materials Project scale, and which elements
it covers. The campaign config, the references, the calculators, batching and ``Simulator``
all read it, so a new potential is one ``register(Backend(...))`` call.

Listing or looking up back-ends imports nothing but the standard library: the config is
checked on machines (and in processes) that never load torch, CHGNet, SevenNet or GPAW.
The pattern follows matbench-discovery's calculator table and atomate2's ``MLFF`` enum.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    """One simulator back-end.

    ``factory`` is ``"package.module:function"``, called as ``function(device, **options)``
    (or ``function(**options)`` when ``takes_device`` is False, as for a user's import path)
    and returning an ASE calculator. ``batch_factory`` likewise returns a
    ``simulators.batch_models.BatchModel``, called with ``device=`` and, when the options
    name a checkpoint, ``model_name=``; None = no batched form. ``options_check``, a
    ``"module:function"`` called with the options dict, rejects bad options when the
    ``Simulator`` is made rather than in the first calculation.

    ``subprocess`` back-ends relax each structure in a child process killed at the wall-time
    limit, ``max_seconds`` when the settings give none. ``mp_compatible`` back-ends were
    trained on Materials Project data, so MP's corrections and elemental references apply to
    them; ``mp2020_corrected`` ones were trained on MP2020-corrected energies (CHGNet) and
    predict energies already on that scale, so only MP's elemental references are
    subtracted (correcting them again would count the corrections twice). ``elements`` are
    those the back-end has parameters for (None = no restriction known), checked when a
    config is loaded; ``elements_lookup`` is a
    ``"module:function"`` that finds them at run time instead (GPAW: the PAW setups
    installed), never called at config load. ``extra`` is the pip extra the back-end needs.
    """

    name: str
    factory: str
    batch_factory: str | None = None
    subprocess: bool = False
    max_seconds: float | None = None
    mp_compatible: bool = False
    mp2020_corrected: bool = False
    elements: frozenset[str] | None = None
    elements_lookup: str | None = None
    options_check: str | None = None
    takes_device: bool = True
    extra: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or is_import_path(self.name) and self.factory != self.name:
            raise ValueError(f"backend name {self.name!r} must be non-empty and not 'a:b'")
        for field in ("factory", "batch_factory", "elements_lookup", "options_check"):
            value = getattr(self, field)
            if value is not None and not is_import_path(value):
                raise ValueError(f"backend {self.name!r}: {field} {value!r} is not 'module:attr'")
        if self.elements is not None:
            object.__setattr__(self, "elements", frozenset(self.elements))

    @property
    def can_batch(self) -> bool:
        return self.batch_factory is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for a child process that must know a back-end registered at run time."""
        d = asdict(self)
        d["elements"] = sorted(self.elements) if self.elements is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Backend:
        elements = d.get("elements")
        return cls(**{**d, "elements": frozenset(elements) if elements is not None else None})


def is_import_path(name: str) -> bool:
    """``package.module:attr``: a user's calculator factory rather than a registered name."""
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr)


def resolve(path: str) -> Callable[..., Any]:
    """The callable a ``"module:attr.sub"`` string names, importing its module now."""
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"cannot import calculator module {module_name!r}: {e}") from e
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as e:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from e
    if not callable(target):
        raise ValueError(f"{path!r} is not callable")
    return target


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend, replace: bool = False) -> Backend:
    """Add a back-end; registering a different one under a taken name needs ``replace``."""
    old = _REGISTRY.get(backend.name)
    if old is not None and old != backend and not replace:
        raise ValueError(f"simulator {backend.name!r} is already registered (replace=True)")
    _REGISTRY[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    """Remove a back-end (tests that register a toy one clean up with this)."""
    _REGISTRY.pop(name, None)


def ensure_registered(backend: Backend) -> None:
    """In another process (a pool worker, the DFT child), know the parent's back-end too:
    one registered at run time exists only where ``register`` ran. The parent's definition
    wins over this process's. Import paths need no entry."""
    if not is_import_path(backend.name):
        register(backend, replace=True)


def backend_names() -> list[str]:
    """Registered names in registration order (an import path ``package.module:factory``
    works too, without an entry)."""
    return list(_REGISTRY)


def backends() -> list[Backend]:
    """Every registered back-end, in registration order."""
    return list(_REGISTRY.values())


def get_backend(name: str) -> Backend:
    """The back-end called ``name``; an import path gets a default one (an ML potential of
    unknown provenance: in-process, no batched form, any element, MP2020 allowed)."""
    backend = _REGISTRY.get(name)
    if backend is not None:
        return backend
    if is_import_path(name):
        return Backend(name=name, factory=name, takes_device=False, mp_compatible=True)
    raise unknown_simulator(name)


def unknown_simulator(name: str) -> ValueError:
    """The error for a name that is neither registered nor an import path."""
    valid = ", ".join(repr(n) for n in backend_names())
    return ValueError(
        f"unknown simulator {name!r}; valid names: {valid}, or an import path "
        "'package.module:factory' returning an ASE calculator"
    )


def names_with(predicate: Callable[[Backend], bool]) -> list[str]:
    """Names of the back-ends for which `predicate` holds (for error messages)."""
    return [b.name for b in _REGISTRY.values() if predicate(b)]


def or_list(names: Iterable[str]) -> str:
    """Quoted names joined as "'a', 'b' or 'c'", for error messages."""
    quoted = [repr(n) for n in names]
    if len(quoted) < 2:
        return "".join(quoted) or "none"
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


# Symbols of Z = 1..94 (H to Pu), written out so that this module imports no pymatgen.
_Z_1_TO_94 = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu "
    "Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu"
).split()

# ase.calculators.emt.parameters. H, C, N and O are only there for adsorbate studies on
# the metals and give poor energies for bulk phases: a smoke test, not physics.
EMT_ELEMENTS = frozenset({"Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt", "H", "C", "N", "O"})
# CHGNet's composition model has one slot per Z = 1..94 (chgnet.model.composition_model,
# max_num_elements=94); a heavier atom cannot be represented.
CHGNET_ELEMENTS = frozenset(_Z_1_TO_94)
# SevenNet-0 (7net-0): the checkpoint's config "chemical_species", 89 elements = Z 1..94
# without Po, At, Rn, Fr and Ra (absent from MPtrj).
SEVENNET_ELEMENTS = frozenset(_Z_1_TO_94) - {"Po", "At", "Rn", "Fr", "Ra"}

# GPAW is a CPU code here (built without MPI or GPU support); a structure gets this long
# unless RelaxSettings.max_seconds says otherwise. Half an hour covers a relaxation of a
# few dozen atoms at the defaults on one core; past it something is wrong (a metal whose
# SCF sloshes, a cell that keeps growing) and the time is better spent on the next one.
GPAW_MAX_SECONDS = 1800.0

for _backend in (
    Backend(
        name="emt",
        factory="simulators.calculators:make_emt",
        elements=EMT_ELEMENTS,
        description="ASE's effective-medium theory: a toy for tests and examples",
    ),
    Backend(
        name="chgnet",
        factory="simulators.calculators:make_chgnet",
        batch_factory="simulators.batch_models:CHGNetBatch",
        mp_compatible=True,
        # CHGNet learned MPtrj's corrected energies: its MnO is -8.98 eV/atom against MP's
        # corrected -9.05 and raw -7.86, and Matbench Discovery's CHGNet formation energies
        # are its raw energies minus MP's elemental references (checked on the WBM sample).
        mp2020_corrected=True,
        elements=CHGNET_ELEMENTS,
        description="CHGNet 0.3.0, trained on MPtrj",
    ),
    Backend(
        name="sevennet",
        factory="simulators.calculators:make_sevennet",
        batch_factory="simulators.batch_models:SevenNetBatch",
        mp_compatible=True,
        elements=SEVENNET_ELEMENTS,
        description="SevenNet-0 (7net-0), trained on MPtrj",
    ),
    # In a child process killed at the wall-time limit: one DFT step can hang or crash in
    # compiled code, which the between-steps time check cannot stop.
    Backend(
        name="gpaw",
        factory="simulators.gpaw_calc:make_gpaw_calculator",
        subprocess=True,
        max_seconds=GPAW_MAX_SECONDS,
        elements_lookup="simulators.gpaw_calc:gpaw_elements",
        options_check="simulators.gpaw_calc:GpawOptions.from_options",
        extra="dft",
        description="GPAW plane-wave PBE DFT, each structure in a child process",
    ),
):
    register(_backend)
