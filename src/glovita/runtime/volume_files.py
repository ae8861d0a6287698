"""Volume files (.npy, .npz, .nii/.nii.gz, .tif/.tiff): their arrays, headers and spacing, for the datasets that
read them and the modality that writes predicted label maps beside them."""

import threading
from pathlib import Path
from typing import Any

import numpy as np

VOLUME_SUFFIXES = (".npy", ".npz", ".nii", ".nii.gz", ".tif", ".tiff")

_NUMPY_HEADERS = threading.Lock()
"""Held while NumPy parses an .npy header (ast.literal_eval): CPython 3.11 keeps the AST constructor's recursion
depth per interpreter, so two threads parsing at once (the file check reads volumes in a thread pool) can fail with
`SystemError: AST constructor recursion depth mismatch` (python/cpython#106905)."""


def _load_npy(path: Path) -> np.ndarray:
    """An .npy file's array: the header parsed under the lock (memory-mapped), the body read outside it."""
    with _NUMPY_HEADERS:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    return np.array(mapped)


def _load_npz_member(path: Path, shape_only: bool = False) -> Any:
    """The `data` array (else the first) of an .npz archive, or its shape; members are read under the lock."""
    with _NUMPY_HEADERS, np.load(path, allow_pickle=False) as archive:
        if not archive.files:
            raise ValueError("the archive holds no array")
        array = archive["data" if "data" in archive.files else archive.files[0]]
    return array.shape if shape_only else array


def read_volume(path: Path) -> np.ndarray:
    """The array in a volume file (nibabel for NIfTI, tifffile for TIFF); names the file when that fails."""
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            array = _load_npy(path)
        elif name.endswith(".npz"):
            array = _load_npz_member(path)
        elif name.endswith((".nii", ".nii.gz")):
            import nibabel

            image: Any = nibabel.load(str(path))  # a NIfTI image (nibabel's stubs say FileBasedImage)
            array = np.asanyarray(image.dataobj)
        elif name.endswith((".tif", ".tiff")):
            import tifffile

            array = tifffile.imread(path)
        else:
            raise ValueError(f"unknown volume suffix (use one of {', '.join(VOLUME_SUFFIXES)})")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"Volume file '{path}' does not exist. Fix splits.json or restore it.") from err
    except (OSError, ValueError, EOFError, KeyError, IndexError) as err:
        raise ValueError(f"Cannot read volume file '{path}' ({err}). Replace or remove the file.") from err
    if array.ndim not in (3, 4):
        raise ValueError(
            f"Volume file '{path}' holds an array of shape {array.shape}; expected (D, H, W) or (C, D, H, W)."
        )
    return array


def check_volume(path: Path) -> tuple[int, ...]:
    """A volume file read whole (a truncated or damaged body fails here, not in a loader worker after training);
    returns its spatial shape (D, H, W). Names the file when it cannot be read."""
    return tuple(int(n) for n in read_volume(path).shape[-3:])


def nifti_spacing(path: Path) -> tuple[float, float, float] | None:
    """Voxel spacing from a NIfTI header (None for other formats)."""
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return None
    import nibabel

    image: Any = nibabel.load(str(path))
    zooms = [float(z) for z in image.header.get_zooms()[:3]]
    return (zooms[0], zooms[1], zooms[2])


def check_volume_header(path: Path) -> tuple[int, ...]:
    """A volume file's spatial shape (D, H, W) from its header (NIfTI, TIFF, .npy memory-mapped; an .npz member is
    read), as the quick check before training reads it; names the file when it cannot be read."""
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            with _NUMPY_HEADERS:
                shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        elif name.endswith(".npz"):
            shape = _load_npz_member(path, shape_only=True)
        elif name.endswith((".nii", ".nii.gz")):
            import nibabel

            image: Any = nibabel.load(str(path))
            shape = image.header.get_data_shape()
        elif name.endswith((".tif", ".tiff")):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.series[0].shape
        else:
            raise ValueError(f"unknown volume suffix (use one of {', '.join(VOLUME_SUFFIXES)})")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"'{path}' does not exist") from err
    except (OSError, ValueError, KeyError, IndexError) as err:
        raise ValueError(f"'{path}' is not a readable volume ({err})") from err
    return tuple(int(n) for n in shape[-3:])
