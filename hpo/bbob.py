"""BBOB-style noiseless test functions (Hansen et al., "Real-parameter black-box optimization
benchmarking 2009: noiseless functions definitions"), written from the published formulas.

They are the sanity suite: known optimum f_opt (so stable anchors are exact), cheap, vectorised over
a batch of points. Instances are drawn from our own seeded generator (shift x_opt, offset f_opt,
rotations R and Q), so values follow BBOB's definitions but not COCO's instance numbers.
"""

from __future__ import annotations

import numpy as np

FUNCTIONS = {
    1: "sphere", 2: "ellipsoid", 3: "rastrigin", 6: "attractive_sector", 8: "rosenbrock",
    10: "rotated_ellipsoid", 12: "bent_cigar", 13: "sharp_ridge", 14: "different_powers",
    15: "rotated_rastrigin",
}


def _t_osz(x: np.ndarray) -> np.ndarray:
    """The oscillation transformation: small smooth ripples that keep the sign and rough scale."""
    xhat = np.where(x != 0, np.log(np.abs(x) + (x == 0)), 0.0)
    c1 = np.where(x > 0, 10.0, 5.5)
    c2 = np.where(x > 0, 7.9, 3.1)
    return np.sign(x) * np.exp(xhat + 0.049 * (np.sin(c1 * xhat) + np.sin(c2 * xhat)))


def _t_asy(x: np.ndarray, beta: float) -> np.ndarray:
    """The asymmetry transformation: positive coordinates get a coordinate-dependent power."""
    d = x.shape[-1]
    power = 1.0 + beta * np.arange(d) / (d - 1) * np.sqrt(np.maximum(x, 0.0))
    return np.where(x > 0, np.abs(x) ** power, x)


def _lambda(alpha: float, d: int) -> np.ndarray:
    return alpha ** (0.5 * np.arange(d) / (d - 1))


def _rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


class BBOBFunction:
    """f_fid in `dim` dimensions, instance `instance`; call on an (n, dim) array in [-5, 5]^dim."""

    def __init__(self, fid: int, dim: int, instance: int = 0):
        if fid not in FUNCTIONS:
            raise ValueError(f"BBOB function f{fid} is not implemented (have {sorted(FUNCTIONS)})")
        if dim < 2:
            raise ValueError("BBOB functions here need at least 2 dimensions")
        self.fid, self.dim, self.instance = fid, dim, instance
        rng = np.random.default_rng([fid, dim, instance])
        self.x_opt = rng.uniform(-4.0, 4.0, dim) * (0.75 if fid == 8 else 1.0)
        ratio = rng.standard_normal() / rng.standard_normal()
        self.f_opt = float(np.clip(np.round(100.0 * ratio, 2), -1000.0, 1000.0))
        self.R = _rotation(rng, dim)
        self.Q = _rotation(rng, dim)

    @property
    def name(self) -> str:
        return FUNCTIONS[self.fid]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        d = self.dim
        s = x - self.x_opt
        cond = 10.0 ** (6.0 * np.arange(d) / (d - 1))
        f = self.fid
        if f == 1:
            value = np.sum(s**2, axis=1)
        elif f == 2:
            value = np.sum(cond * _t_osz(s) ** 2, axis=1)
        elif f in (3, 15):
            z = _t_asy(_t_osz(s if f == 3 else s @ self.R.T), 0.2)
            z = z * _lambda(10.0, d) if f == 3 else (z @ self.Q.T) * _lambda(10.0, d) @ self.R.T
            value = 10.0 * (d - np.sum(np.cos(2 * np.pi * z), axis=1)) + np.sum(z**2, axis=1)
        elif f == 6:
            z = ((s @ self.R.T) * _lambda(10.0, d)) @ self.Q.T
            scale = np.where(z * self.x_opt > 0, 100.0, 1.0)
            value = _t_osz(np.sum((scale * z) ** 2, axis=1)) ** 0.9
        elif f == 8:
            z = max(1.0, np.sqrt(d) / 8.0) * s + 1.0
            value = np.sum(100.0 * (z[:, :-1] ** 2 - z[:, 1:]) ** 2 + (z[:, :-1] - 1.0) ** 2, axis=1)
        elif f == 10:
            value = np.sum(cond * _t_osz(s @ self.R.T) ** 2, axis=1)
        elif f == 12:
            z = _t_asy(s @ self.R.T, 0.5) @ self.R.T
            value = z[:, 0] ** 2 + 1e6 * np.sum(z[:, 1:] ** 2, axis=1)
        elif f == 13:
            z = ((s @ self.R.T) * _lambda(10.0, d)) @ self.Q.T
            value = z[:, 0] ** 2 + 100.0 * np.sqrt(np.sum(z[:, 1:] ** 2, axis=1))
        else:  # 14
            z = s @ self.R.T
            value = np.sqrt(np.sum(np.abs(z) ** (2.0 + 4.0 * np.arange(d) / (d - 1)), axis=1))
        return value + self.f_opt
