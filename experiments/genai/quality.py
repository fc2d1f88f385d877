"""Image quality of a generated set against a reference set made from the same seeds:
optical images against the electronic ones.

Per image (reference ``a[i]`` against test ``b[i]``, both in [0, 1]):

* :func:`psnr` -- peak signal-to-noise ratio ``10 log10(L^2 / MSE)`` with data range ``L = 1``; ``inf`` for
  identical images.
* :func:`ssim` -- the structural similarity index of

      Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality assessment: from error
      visibility to structural similarity", IEEE Transactions on Image Processing 13(4):600-612, 2004,
      doi:10.1109/TIP.2003.819861.

  as defined there: local statistics under a normalised circular-symmetric Gaussian window with
  sigma = 1.5 (their eqs. 14-16; weighted, not sample-corrected, variances), ``C1 = (K1 L)^2``,
  ``C2 = (K2 L)^2`` with ``K1 = 0.01``, ``K2 = 0.03`` (their eq. 13 for each window position), averaged
  over all window positions that lie entirely inside the image (their mean SSIM, eq. 17). The paper's
  window is 11 x 11; it cannot fit an 8 x 8 image, so the Gaussian is truncated to the largest odd size
  that fits (7 x 7 for 8 x 8 images, i.e. +-2 sigma) and renormalised: 2 x 2 = 4 window positions.

Colour images, (n, H, W, C) stacks (a single one as (1, H, W, C)): PSNR over all pixels and channels, SSIM
computed per channel and averaged over the channels.

Per set, judged by the bundled digit classifier (:mod:`experiments.genai.classifier`; it reads 8 x 8
grey images only: for other images these metrics are None and :func:`classifier_note` says why):

* :func:`classifier_agreement` -- fraction of seeds whose two images get the same label;
* :func:`mean_confidence` -- mean maximum class probability;
* :func:`conditional_accuracy` -- fraction of images classified as the requested digit;
* :func:`feature_frechet_distance` -- Frechet distance between Gaussians fitted to the classifier's
  penultimate features of the two sets (:func:`~experiments.genai.classifier.frechet_distance`).

:func:`quality_table` gathers them into rows (one per image set, extra columns such as effective bits or
received optical power can be attached) and :func:`format_table` prints rows as aligned plain text.

    >>> rows = quality_table(electronic, {"optical": optical}, requested=labels)
    >>> print(format_table(rows))
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "K1",
    "K2",
    "SIGMA",
    "classifier_agreement",
    "classifier_note",
    "compare",
    "conditional_accuracy",
    "feature_frechet_distance",
    "format_table",
    "gaussian_window",
    "mean_confidence",
    "psnr",
    "quality_table",
    "ssim",
    "ssim_map",
]

#: SSIM constants and window of Wang et al. (2004).
K1, K2, SIGMA = 0.01, 0.03, 1.5
#: Window size of Wang et al. (2004), used when the image is large enough.
PAPER_WINDOW = 11


# -- per-image metrics ------------------------------------------------------------------------------


def _pair(a, b) -> tuple[np.ndarray, np.ndarray, bool]:
    """Two image stacks (n, H, W) or (n, H, W, C) as float64; ``single`` when (H, W) images were given."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images: the two sets must have the same shape, got {x.shape} and {y.shape}")
    if x.ndim not in (2, 3, 4) or 0 in x.shape[1:]:
        raise ValueError(f"images: expected (H, W), (n, H, W) or (n, H, W, C), got shape {x.shape}")
    single = x.ndim == 2
    return (x[None], y[None], True) if single else (x, y, False)


def psnr(reference, test, data_range: float = 1.0):
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, per image.

    ``reference``, ``test``: (H, W) -> float, or (n, H, W) / (n, H, W, C) -> (n,) array (the MSE over all
    pixels and channels). Identical images give ``inf``.
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range!r}")
    x, y, single = _pair(reference, test)
    mse = np.mean((x - y) ** 2, axis=tuple(range(1, x.ndim)))
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(data_range**2 / mse)
    return float(out[0]) if single else out


def gaussian_window(size: int, sigma: float = SIGMA) -> np.ndarray:
    """The (size, size) circular-symmetric Gaussian window, normalised to sum 1 (``size`` odd)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be odd and >= 1, got {size}")
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def _window_size(height: int, width: int) -> int:
    """The paper's 11, truncated to the largest odd size that fits the image."""
    size = min(PAPER_WINDOW, height, width)
    return size if size % 2 else size - 1


def ssim_map(reference, test, data_range: float = 1.0, sigma: float = SIGMA, k1: float = K1,
             k2: float = K2, window: int | None = None) -> np.ndarray:
    """Local SSIM (Wang et al. 2004, eq. 13) at every window position inside the image: (n, H-w+1, W-w+1)
    for (n, H, W) inputs ((H-w+1, W-w+1) for one image; (n, H-w+1, W-w+1, C), channel by channel, for
    (n, H, W, C) colour images). ``window``: odd size (default: 11 truncated to fit)."""
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range!r}")
    x, y, single = _pair(reference, test)
    if x.ndim == 4:  # colour: each channel as a grey image
        grey = [ssim_map(x[..., k], y[..., k], data_range, sigma, k1, k2, window) for k in range(x.shape[-1])]
        return np.stack(grey, axis=-1)
    h, w_ = x.shape[-2:]
    size = _window_size(h, w_) if window is None else int(window)
    if size > min(h, w_):
        raise ValueError(f"window {size} does not fit {h} x {w_} images")
    win = gaussian_window(size, sigma)
    view = np.lib.stride_tricks.sliding_window_view

    def local_mean(z: np.ndarray) -> np.ndarray:  # (n, H', W') weighted mean over each window
        return np.einsum("nijkl,kl->nij", view(z, (size, size), axis=(-2, -1)), win)

    mu_x, mu_y = local_mean(x), local_mean(y)
    # weighted (co)variances, eqs. 14-16 with sum(w) = 1: E_w[xy] - mu_x mu_y
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    out = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return out[0] if single else out


def ssim(reference, test, data_range: float = 1.0, sigma: float = SIGMA, k1: float = K1, k2: float = K2,
         window: int | None = None):
    """Mean SSIM (Wang et al. 2004, eq. 17) per image: (H, W) -> float, (n, H, W) -> (n,) array; (n, H, W, C)
    colour images -> (n,) array, the mean over the channels of each channel's mean SSIM.

    Symmetric in its arguments; 1 for identical images. See the module docstring for the window.
    """
    m = ssim_map(reference, test, data_range, sigma, k1, k2, window)
    out = m.mean(axis=(-2, -1)) if m.ndim <= 3 else m.mean(axis=(1, 2, 3))
    return float(out) if np.ndim(out) == 0 else out


# -- classifier-based set metrics -------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _bundled_classifier():
    from .classifier import load_classifier

    return load_classifier()


def classifier_or_default(classifier):
    """``classifier``, or the bundled digit classifier when it is None (loaded on first use)."""
    return _bundled_classifier() if classifier is None else classifier


#: Image shape the bundled digit classifier reads.
CLASSIFIER_SHAPE = (8, 8)


def classifier_note(images) -> str | None:
    """None if the bundled digit classifier can read ``images`` ((n, 8, 8) grey); otherwise the reason why
    the classifier-based metrics (labels, confidence, agreement, accuracy, Frechet distance) are skipped."""
    shape = tuple(np.shape(images))
    if len(shape) == 3 and shape[1:] == CLASSIFIER_SHAPE:
        return None
    size = " x ".join(map(str, shape[1:])) or "scalar"
    return (f"classifier-based metrics skipped: the bundled digit classifier reads 8 x 8 grey images, these "
            f"are {size} (PSNR and SSIM are computed for any image size)")


def _images(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"images: expected (n, 8, 8), got shape {x.shape}")
    return x


def classifier_agreement(images_a, images_b, classifier=None) -> float:
    """Fraction of positions ``i`` whose images ``a[i]`` and ``b[i]`` get the same classifier label."""
    a, b = _images(images_a), _images(images_b)
    if a.shape != b.shape:
        raise ValueError(f"images: the two sets must have the same shape, got {a.shape} and {b.shape}")
    clf = classifier_or_default(classifier)
    return float(np.mean(clf.classify(a)[0] == clf.classify(b)[0]))


def mean_confidence(images, classifier=None) -> float:
    """Mean over images of the classifier's maximum class probability."""
    return float(np.mean(classifier_or_default(classifier).classify(_images(images))[1]))


def _requested(requested, n: int) -> np.ndarray:
    r = np.asarray(requested)
    r = np.full(n, int(r)) if r.ndim == 0 else r.astype(np.int64)
    if r.shape != (n,):
        raise ValueError(f"requested: expected one label or {n} labels, got shape {r.shape}")
    return r


def conditional_accuracy(images, requested, classifier=None) -> float | None:
    """Fraction of images classified as the digit requested for them (``requested``: one label or one per
    image; entries < 0 mean 'nothing requested' and are left out). None if nothing was requested."""
    x = _images(images)
    r = _requested(requested, len(x))
    asked = r >= 0
    if not asked.any():
        return None
    labels = classifier_or_default(classifier).classify(x[asked])[0]
    return float(np.mean(labels == r[asked]))


def feature_frechet_distance(images_a, images_b, classifier=None) -> float:
    """Frechet distance between the classifier's penultimate features of two sets (each n >= 2)."""
    from .classifier import frechet_distance

    clf = classifier_or_default(classifier)
    return frechet_distance(clf.features(_images(images_a)), clf.features(_images(images_b)))


# -- tables -----------------------------------------------------------------------------------------


def _stats(values: np.ndarray, prefix: str) -> dict[str, float]:
    return {f"{prefix}_mean": float(np.mean(values)), f"{prefix}_min": float(np.min(values)),
            f"{prefix}_median": float(np.median(values))}


def compare(reference, test, *, requested=None, classifier=None) -> dict[str, Any]:
    """Every metric of ``test`` against ``reference`` (same seeds, same shape (n, 8, 8)).

    Keys: ``n``, ``psnr_db_mean/min/median``, ``ssim_mean/min/median``, ``classifier_agreement``,
    ``confidence`` (of ``test``), ``accuracy`` (of ``test`` on ``requested``; None without),
    ``frechet_distance`` (None for n < 2). Images the digit classifier cannot read (any other shape,
    e.g. (n, H, W, 3) colour): the four classifier-based values are None and ``note`` says why.
    """
    note = classifier_note(reference)
    if note is not None:
        p, s = psnr(reference, test), ssim(reference, test)
        row: dict[str, Any] = {"n": int(len(p))}
        row.update(_stats(p, "psnr_db"))
        row.update(_stats(s, "ssim"))
        row.update(classifier_agreement=None, confidence=None, accuracy=None, frechet_distance=None, note=note)
        return row
    ref, tst = _images(reference), _images(test)
    if ref.shape != tst.shape:
        raise ValueError(f"images: the two sets must have the same shape, got {ref.shape} and {tst.shape}")
    clf = classifier_or_default(classifier)
    ref_labels = clf.classify(ref)[0]
    labels, conf = clf.classify(tst)
    row: dict[str, Any] = {"n": int(len(tst))}
    row.update(_stats(psnr(ref, tst), "psnr_db"))
    row.update(_stats(ssim(ref, tst), "ssim"))
    row["classifier_agreement"] = float(np.mean(labels == ref_labels))
    row["confidence"] = float(np.mean(conf))
    if requested is None:
        row["accuracy"] = None
    else:
        r = _requested(requested, len(tst))
        row["accuracy"] = float(np.mean(labels[r >= 0] == r[r >= 0])) if (r >= 0).any() else None
    row["frechet_distance"] = feature_frechet_distance(ref, tst, clf) if len(tst) >= 2 else None
    return row


def quality_table(reference, candidates: Mapping[str, Any], *, reference_name: str = "electronic",
                  requested=None, classifier=None, extra: Mapping[str, Mapping[str, Any]] | None = None,
                  include_reference: bool = True) -> list[dict[str, Any]]:
    """One row per image set, each compared with ``reference`` (the same seeds made electronically).

    ``candidates``: ``{set name: images (n, 8, 8)}`` (e.g. optical runs at several received powers; other
    shapes: PSNR/SSIM only, see :func:`compare`);
    ``extra``: ``{set name: {column: value}}`` attached to that row (e.g. ``{"bits": 6.5, "power_dbm": -3}``).
    ``include_reference``: a first row for the reference against itself (its confidence and accuracy are
    the electronic baseline). Row keys: ``set``, the extra columns, then those of :func:`compare`.
    """
    extra = dict(extra or {})
    unknown = set(extra) - set(candidates) - ({reference_name} if include_reference else set())
    if unknown:
        raise ValueError(f"extra: no image set named {sorted(unknown)}")
    sets = ({reference_name: reference} if include_reference else {}) | dict(candidates)
    if include_reference and reference_name in candidates:
        raise ValueError(f"candidates: {reference_name!r} is the reference's name")
    clf = classifier_or_default(classifier) if classifier_note(reference) is None else None
    rows = []
    for name, images in sets.items():
        row = {"set": name, **dict(extra.get(name, {}))}
        row.update(compare(reference, images, requested=requested, classifier=clf))
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.4f}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 headers: Mapping[str, str] | None = None) -> str:
    """Rows (dicts) as an aligned plain-text table: header, rule, one line per row.

    Numbers are right-aligned (4 decimals; 1 from 100 up; exponent form from 1e6 or below 1e-3), text
    left-aligned; None prints as '-'. ``columns``: which keys, in order (default: every key, in order of
    first appearance); ``headers``: ``{key: header text}`` for some of them (default: the key)."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    columns = list(columns)
    if not columns:
        return ""
    titles = [str((headers or {}).get(c, c)) for c in columns]
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    numeric = [all(r.get(c) is None or (isinstance(r.get(c), (int, float, np.integer, np.floating))
                                        and not isinstance(r.get(c), (bool, np.bool_))) for r in rows)
               for c in columns]
    widths = [max([len(t)] + [len(row[i]) for row in cells]) for i, t in enumerate(titles)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(titles), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)
