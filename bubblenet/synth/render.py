"""Drawing the synthetic sky: diffuse emission, filaments, dark clouds, shells, stars.

Everything here works on plain numpy arrays in pixel units; `survey` decides
where things go on the sky. Sizes are in pixels, brightness in MJy/sr.

Physics kept (and numbers chosen) so that the images resemble GLIMPSE 8 µm and
MIPSGAL 24 µm:

* diffuse emission is a log-normal field with a power-law spatial spectrum
  (P(k) ∝ k^-2.6 for the field shared by both bands, close to the slopes
  measured for Galactic dust emission,
  e.g. Miville-Deschênes et al. 2010, A&A 518, L104);
* an infrared bubble is a 3-D shell seen in projection: the column through a
  spherical shell of radii r1 < r2 is sqrt(r2² - ρ²) - sqrt(r1² - ρ²), which
  is limb-brightened at ρ = r1 (PAH emission from the photodissociation region
  at 8 µm), with hot dust filling the inside at 24 µm (Churchwell et al.
  2006, ApJ 649, 759; Deharveng et al. 2010, A&A 523, A6);
* point sources are convolved with Airy patterns of the 0.85 m Spitzer mirror
  (first dark ring at 1.22 λ/D: 2.4″ at 8 µm, 7.1″ at 24 µm).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import fft, ndimage, signal, special

__all__ = [
    "power_law_field",
    "draw_curves",
    "ShellParams",
    "shell_images",
    "blob",
    "airy_kernel",
    "splat",
    "add_patch",
    "convolve_psf",
    "smooth",
]

#: Spitzer primary mirror diameter, m.
MIRROR_DIAMETER = 0.85


def power_law_field(shape: tuple[int, int], slope: float, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian random field with power spectrum P(k) ∝ k^-slope, unit variance.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    slope : float
        Power-law index of the spatial power spectrum.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        float32 field with mean 0 and standard deviation 1 (periodic edges).
    """
    ny, nx = shape
    ky = fft.fftfreq(ny).astype(np.float32)[:, None]
    kx = fft.rfftfreq(nx).astype(np.float32)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = np.inf  # no mean component
    noise = rng.standard_normal(shape, dtype=np.float32)
    spectrum = fft.rfft2(noise)
    spectrum *= k ** np.float32(-slope / 2)
    field = fft.irfft2(spectrum, s=shape).astype(np.float32)
    field -= field.mean()
    field /= field.std() or 1.0
    return field


def draw_curves(shape, n: int, length: tuple[float, float], rng: np.random.Generator,
                *, persistence: float = 0.97) -> np.ndarray:
    """Unit-weight ink along `n` meandering curves, one pixel wide (blur it afterwards).

    Each curve is a correlated random walk with steps of one pixel: its heading
    changes by small random turns, `persistence` setting how straight it is.
    Curve lengths are log-uniform in `length` (pixels).
    """
    ny, nx = shape
    ink = np.zeros(shape, dtype=np.float32)
    for _ in range(n):
        steps = int(math.exp(rng.uniform(math.log(length[0]), math.log(length[1]))))
        # Heading: a random walk whose step size sets how quickly the curve bends.
        heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0.0, 1 - persistence, steps))
        x = rng.uniform(0, nx) + np.cumsum(np.cos(heading))
        y = rng.uniform(0, ny) + np.cumsum(np.sin(heading))
        weight = rng.uniform(0.3, 1.0) * (0.6 + 0.4 * np.sin(np.linspace(0, rng.uniform(2, 12), steps)) ** 2)
        ok = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
        np.add.at(ink, (y[ok].astype(int), x[ok].astype(int)), weight[ok].astype(np.float32))
    return ink


@dataclasses.dataclass
class ShellParams:
    """The look of one bubble; sizes in pixels, angles in radians.

    Attributes
    ----------
    a, b : float
        Semi-major and semi-minor axes of the shell ridge.
    angle : float
        Major-axis direction, counter-clockwise from the +x pixel axis.
    thickness : float
        Shell thickness as a fraction of the radius.
    amp8, amp24 : float
        Peak 8 µm rim and 24 µm centre brightness, MJy/sr.
    interior8 : float
        8 µm brightness inside the shell, as a fraction of `amp8`.
    envelope8, envelope24 : float
        Broad surrounding glow, fraction of each band's amplitude.
    sigma24 : float
        Width of the 24 µm emission, fraction of the radius.
    harmonics : numpy.ndarray
        ``(m, amplitude, phase)`` rows modulating the rim brightness with angle.
    gaps : numpy.ndarray
        ``(centre, half_width)`` rows (radians) of broken parts of the rim.
    compact : float
        How much (0-1) the bubble looks like a compact HII region instead of a ring: a filled,
        soft-edged 8 µm disk whose 24 µm emission follows it (`shell_images`); 0 by default.
    compact_amp24 : float
        24 µm brightness scale of the compact look, MJy/sr (its centre is 0.8-1 times it).
    """

    a: float
    b: float
    angle: float
    thickness: float
    amp8: float
    amp24: float
    interior8: float
    envelope8: float
    envelope24: float
    sigma24: float
    harmonics: np.ndarray
    gaps: np.ndarray
    compact: float = 0.0
    compact_amp24: float = 0.0

    @property
    def extent(self) -> float:
        """Half-size in pixels of the patch holding all the emission."""
        return 3.2 * max(self.a, self.b) + 3


def _elliptic_coords(p: ShellParams, dx: np.ndarray, dy: np.ndarray):
    """Normalised elliptical radius ρ (1 on the ridge) and angle around the ellipse."""
    c, s = math.cos(p.angle), math.sin(p.angle)
    u = (dx * c + dy * s) / p.a
    v = (-dx * s + dy * c) / p.b
    return np.hypot(u, v), np.arctan2(v, u)


def _rim_modulation(p: ShellParams, phi: np.ndarray) -> np.ndarray:
    """Brightness along the rim: low-order harmonics times smooth-edged gaps."""
    mod = np.ones_like(phi)
    for m, amp, phase in p.harmonics:
        mod += amp * np.cos(m * phi + phase)
    mod = np.clip(mod, 0.05, None)
    for centre, half in p.gaps:
        d = np.abs((phi - centre + np.pi) % (2 * np.pi) - np.pi)  # angular distance
        # smooth step from 1 (outside the gap) to 0.05 (inside), edge width ~ half/3
        t = np.clip((d - half * 0.7) / (half * 0.6 + 1e-6), 0, 1)
        mod *= 0.05 + 0.95 * t * t * (3 - 2 * t)
    return mod


def shell_images(p: ShellParams, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8 µm and 24 µm brightness of one bubble at pixel offsets from its centre.

    Parameters
    ----------
    p : ShellParams
    dx, dy : numpy.ndarray
        Pixel offsets (same shape) from the bubble centre.

    Returns
    -------
    img8, img24 : numpy.ndarray
        Brightness in MJy/sr, arrays shaped like `dx`.
    """
    rho, phi = _elliptic_coords(p, dx, dy)
    # Most bubbles look more like rings than spherical shells (Beaumont &
    # Williams 2010, ApJ 709, 791): the rim is a ring just outside the catalogue
    # ellipse's outer side (the ellipses trace the shells' inner parts), plus a
    # weaker projected 3-D shell whose limb lies on the ellipse.
    ring = np.exp(-0.5 * ((rho - 1.1) / (0.5 * p.thickness)) ** 2)
    r1, r2 = 1.0, 1.0 + p.thickness
    shell = np.sqrt(np.clip(r2**2 - rho**2, 0, None)) - np.sqrt(np.clip(r1**2 - rho**2, 0, None))
    shell /= math.sqrt(r2**2 - r1**2)  # 1 at the limb
    column = 0.65 * ring + 0.35 * shell
    modulation = _rim_modulation(p, phi)
    rim = column * modulation
    inside = 1.0 / (1.0 + np.exp((rho - r1) / 0.05))  # soft-edged disk
    envelope8 = p.envelope8 * np.exp(-0.5 * (rho / 1.8) ** 2)
    img8 = p.amp8 * (rim + p.interior8 * inside + envelope8)
    img24 = p.amp24 * (np.exp(-0.5 * (rho / p.sigma24) ** 2) + p.envelope24 * np.exp(-0.5 * (rho / 1.6) ** 2))
    if p.compact > 0:
        look8, look24 = _compact_look(p, rho, column, modulation, envelope8)
        img8, img24 = (1 - p.compact) * img8 + p.compact * look8, (1 - p.compact) * img24 + p.compact * look24
    return img8.astype(np.float32), img24.astype(np.float32)


#: The compact look (`ShellParams.compact`): where its filled disk's soft edge lies and how wide it is (ρ
#: units), the weight of the ring's column in its 8 µm light (a third to a half of it), and the weight of a
#: unit-peak central core (sigma `COMPACT_CORE_SIGMA`) in its 24 µm (some 7 % of the light; the rest follows the
#: 8 µm). Chosen so that the real field's DR2 bubbles under 1.4′ and their twins' agree in centre and rim ranks
#: and 8-24 µm correlation (docs/measurements.md, "Small bubbles drawn as compact HII regions").
COMPACT_EDGE, COMPACT_EDGE_WIDTH, COMPACT_RIM_SHARE = 1.1, 0.12, 0.4
COMPACT_CORE_SHARE, COMPACT_CORE_SIGMA = 0.15, 0.5
#: The compact look's 8 µm brightness, in units of the ring's `ShellParams.amp8`.
COMPACT_GAIN8 = 2.0


def _compact_look(p: ShellParams, rho, column, modulation, envelope8):
    """The 8 and 24 µm images of a bubble in a compact HII region's look.

    On the real Milky Way Project field at 6.75″/px the DR2 bubbles under about
    1.4′ are filled blobs at 8 µm, as bright inside as at the rim, and their 24 µm
    emission has the same shape (correlation ~0.86 within 1.5 MajAxis, against
    ~0.2-0.6 for ring-and-core twins): young, compact HII regions whose PAH shell is
    seen across their face. The rim's brightness modulation (`modulation`, gaps too)
    carries over to the disk, fading to none at the centre so that a gap dims one
    side rather than cutting a slice to the middle; both bands share it, and so
    their asymmetries.
    """
    faded = 1.0 + (modulation - 1.0) * np.clip(rho, 0.0, 1.0)
    disk = 1.0 / (1.0 + np.exp(np.clip((rho - COMPACT_EDGE) / COMPACT_EDGE_WIDTH, None, 50.0)))
    filled = (1 - COMPACT_RIM_SHARE) * disk * faded + COMPACT_RIM_SHARE * column * modulation
    core = np.exp(-0.5 * (rho / COMPACT_CORE_SIGMA) ** 2)
    look8 = COMPACT_GAIN8 * p.amp8 * (filled + envelope8)
    look24 = p.compact_amp24 * ((1 - COMPACT_CORE_SHARE) * filled + COMPACT_CORE_SHARE * core
                                + p.envelope24 * np.exp(-0.5 * (rho / 1.6) ** 2))
    return look8, look24


def blob(dx: np.ndarray, dy: np.ndarray, sigma: float) -> np.ndarray:
    """A unit-peak circular Gaussian at pixel offsets."""
    return np.exp(-0.5 * (dx**2 + dy**2) / sigma**2).astype(np.float32)


def add_patch(images: tuple[np.ndarray, ...], x: float, y: float, half: float, draw) -> None:
    """Add ``draw(dx, dy)`` to each image in the square of half-size `half` around (x, y).

    `draw` receives float32 pixel offsets from the (sub-pixel) centre and
    returns one array per image, shaped like the offsets. The images share a
    grid; the patch is clipped at their edges.
    """
    ny, nx = images[0].shape
    x0, x1 = max(int(math.floor(x - half)), 0), min(int(math.ceil(x + half)) + 1, nx)
    y0, y1 = max(int(math.floor(y - half)), 0), min(int(math.ceil(y + half)) + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return
    dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    for image, values in zip(images, draw(dx - np.float32(x), dy - np.float32(y))):
        image[y0:y1, x0:x1] += values


def airy_kernel(wavelength_um: float, pixscale_arcsec: float) -> np.ndarray:
    """The Airy pattern of Spitzer's mirror sampled on the pixel grid, sum 1.

    Each pixel is integrated over a 5 x 5 sub-grid, so undersampled PSFs
    (8 µm at 2.4″/px) keep their flux and shape.
    """
    first_null = 1.22 * wavelength_um * 1e-6 / MIRROR_DIAMETER * 206264.806 / pixscale_arcsec  # px
    half = int(math.ceil(3.5 * first_null)) + 1
    sub = 5
    g = (np.arange(-half * sub, (half + 1) * sub) - (sub - 1) / 2) / sub
    yy, xx = np.meshgrid(g, g, indexing="ij")
    r = np.hypot(xx, yy) * (3.8317 / first_null)  # first zero of J1 at the first null
    with np.errstate(invalid="ignore", divide="ignore"):
        psf = np.where(r > 0, (2 * special.j1(r) / r) ** 2, 1.0)
    n = 2 * half + 1
    psf = psf.reshape(n, sub, n, sub).sum(axis=(1, 3))
    return (psf / psf.sum()).astype(np.float32)


def splat(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> np.ndarray:
    """Deposit point fluxes on a grid with bilinear weights (sub-pixel positions kept)."""
    ny, nx = shape
    out = np.zeros(shape, dtype=np.float32)
    ix, iy = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - ix).astype(np.float32), (y - iy).astype(np.float32)
    for ox, oy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        jx, jy = ix + ox, iy + oy
        ok = (jx >= 0) & (jx < nx) & (jy >= 0) & (jy < ny)
        np.add.at(out, (jy[ok], jx[ok]), (flux * w)[ok])
    return out


def convolve_psf(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve with a PSF kernel (overlap-add FFT: fast for large images)."""
    return signal.oaconvolve(image, kernel, mode="same").astype(np.float32)


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with `sigma` pixels (a no-op for sigma < 0.1)."""
    if sigma < 0.1:
        return image
    return ndimage.gaussian_filter(image, sigma, mode="nearest")
