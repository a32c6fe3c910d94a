// Fused CPU kernels for Kolmogorov-Arnold layers and rational activations (archsearch.kernels).
//
// basis_forward / basis_backward: y[n, :] = sum_i sum_m B_m(x[n, i]) C[i, m, :] without the (batch, in,
// n_basis) tensor of basis values. B-splines: the bases are evaluated in registers and only the order + 1
// whose support contains x are touched. Dense bases (RBF, Chebyshev, Fourier): a block of rows is
// evaluated into a buffer that stays in cache and contracted by a GEMM (see dense_forward). The basis
// parameters (knots, centers, frequencies) are tensors read at run time, so grids may move.
//
// rational_forward / rational_backward: F(x) = P(x) / (1 + |Q(x)|) per channel group (KAT's safe form)
// or P(x) / (1 + sum_k |b_k| |x|^k) (PAU's safe form), with the closed-form derivative in one pass.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr int64_t kMaxBasis = 64;
constexpr int64_t kMaxOrder = 15;
constexpr int64_t kTile = 16;  // inputs whose B-spline bases are evaluated together (vectorized across the tile)
enum Family : int64_t { kBSpline = 0, kRBF = 1, kChebyshev = 2, kFourier = 3 };

// The bases of a tile of inputs x[0..n): entry (r, t) of val / der is basis start[t] + r of input t,
// r < count. Entries outside [0, n_basis) are computed but dropped by the contraction (clip).
template <typename T>
struct Tile {
  T val[kMaxBasis + 1][kTile];
  T der[kMaxBasis + 1][kTile];
  int64_t start[kTile];
  int64_t count;
};

template <typename T>
struct Basis {  // B-splines: the sparse basis, evaluated per tile of inputs
  const T* p;        // knots
  int64_t n_p;
  int64_t order;
  int64_t n_basis;
  int64_t p_stride = 0;  // a grid per input feature (in, n_p): the next feature's

  Basis feature(int64_t i) const {
    Basis b = *this;
    b.p = p + i * p_stride;
    return b;
  }

  // Uniform knots (spacing h = t_1 - t_0, as the eager block assumes; the values are read from the
  // tensor, so a grid that moves or rescales needs no rebuild). Span s: t_s <= x < t_{s+1}, found by
  // division and corrected against the knots themselves, so inputs on a knot match the eager
  // comparisons. Then Cox-de Boor on the local triangle only, in the eager block's own arithmetic:
  // B^q_j = ((x - t_j) B^{q-1}_j - (x - t_{j+q+1}) B^{q-1}_{j+1}) / (q h). Outside the knots (and for
  // NaN) every basis is zero.
  void bspline(const T* x, int64_t stride, int64_t n, bool with_der, Tile<T>& tile) const {
    const T* t = p;
    const int64_t K = n_p, k = order;
    const T h = t[1] - t[0], first = t[0], last = t[K - 1];
    T dist[2 * kMaxOrder + 2][kTile], inside[kTile], xs[kTile];
    int64_t span[kTile];
    for (int64_t i = 0; i < kTile; ++i) {
      const T xv = i < n ? x[i * stride] : T(0);
      const bool in = i < n && xv >= first && xv < last;
      T g = in ? std::floor((xv - first) / h) : T(0);
      int64_t s = g < 0 ? 0 : (g > T(K - 2) ? K - 2 : static_cast<int64_t>(g));
      if (s > 0 && xv < t[s]) --s;
      if (s < K - 2 && xv >= t[s + 1]) ++s;
      inside[i] = in ? T(1) : T(0);
      xs[i] = in ? xv : T(0);
      span[i] = s;
      tile.start[i] = s - k;
    }
    for (int64_t o = 0; o <= 2 * k + 1; ++o) {  // x - t_j for j = s - k .. s + k + 1 (clamped ones: unused)
#pragma omp simd
      for (int64_t i = 0; i < kTile; ++i) {
        const int64_t j = std::min<int64_t>(std::max<int64_t>(span[i] - k + o, 0), K - 1);
        dist[o][i] = (xs[i] - t[j]) * inside[i];
      }
    }
    auto& N = tile.val;
    for (int64_t r = 0; r <= k; ++r)
      for (int64_t i = 0; i < kTile; ++i) N[r][i] = r == k ? inside[i] : T(0);
    for (int64_t q = 1; q <= k; ++q) {
      if (q == k && with_der) {
        // dB^k_j / dx = (B^{k-1}_j - B^{k-1}_{j+1}) / h
        for (int64_t r = 0; r <= k; ++r)
#pragma omp simd
          for (int64_t i = 0; i < kTile; ++i) tile.der[r][i] = (N[r][i] - (r < k ? N[r + 1][i] : T(0))) / h;
      }
      const T denominator = T(q) * h;
      for (int64_t r = k - q; r <= k; ++r) {
#pragma omp simd
        for (int64_t i = 0; i < kTile; ++i) {
          const T next = r < k ? N[r + 1][i] : T(0);
          N[r][i] = (dist[r][i] * N[r][i] - dist[r + q + 1][i] * next) / denominator;
        }
      }
    }
    if (with_der && k == 0)
      for (int64_t i = 0; i < kTile; ++i) tile.der[0][i] = 0;
    tile.count = k + 1;
  }

};

// Clip the entries [0, count) of a basis evaluation to the bases that exist, [0, n_basis).
inline void clip(int64_t start, int64_t count, int64_t n_basis, int64_t& r0, int64_t& r1) {
  r0 = std::max<int64_t>(0, -start);
  r1 = std::min<int64_t>(count, n_basis - start);
}

template <typename T>
void basis_forward_impl(const T* x, const T* C, T* y, int64_t N, int64_t in, int64_t out, const Basis<T>& basis) {
  const int64_t nb = basis.n_basis;
  const int64_t tiles = (N + kTile - 1) / kTile;
  at::parallel_for(0, tiles, 1, [&](int64_t b0, int64_t b1) {
    Tile<T> tile;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n0 = b * kTile, rows = std::min<int64_t>(kTile, N - n0);
      for (int64_t i = 0; i < in; ++i) {
        basis.feature(i).bspline(x + n0 * in + i, in, rows, false, tile);
        for (int64_t t = 0; t < rows; ++t) {
          int64_t r0, r1;
          clip(tile.start[t], tile.count, nb, r0, r1);
          T* __restrict__ yr = y + (n0 + t) * out;
          const T* Ci = C + (i * nb + tile.start[t]) * out;
          int64_t r = r0;
          for (; r + 3 < r1; r += 4) {
            const T v0 = tile.val[r][t], v1 = tile.val[r + 1][t], v2 = tile.val[r + 2][t], v3 = tile.val[r + 3][t];
            const T* __restrict__ c0 = Ci + r * out;
            const T* __restrict__ c1 = c0 + out;
            const T* __restrict__ c2 = c1 + out;
            const T* __restrict__ c3 = c2 + out;
#pragma omp simd
            for (int64_t j = 0; j < out; ++j) yr[j] += v0 * c0[j] + v1 * c1[j] + v2 * c2[j] + v3 * c3[j];
          }
          for (; r < r1; ++r) {
            const T v = tile.val[r][t];
            const T* __restrict__ c = Ci + r * out;
#pragma omp simd
            for (int64_t j = 0; j < out; ++j) yr[j] += v * c[j];
          }
        }
      }
    }
  });
}

template <typename T>
void basis_backward_impl(const T* x, const T* C, const T* gy, T* gx, T* gC, int64_t N, int64_t in, int64_t out,
                         const Basis<T>& basis) {
  const int64_t nb = basis.n_basis;
  // Over input features: each owns its slice of gC and its column of gx, so no two threads write alike.
  at::parallel_for(0, in, 1, [&](int64_t i0, int64_t i1) {
    Tile<T> tile;
    for (int64_t i = i0; i < i1; ++i) {
      const T* Ci = C + i * nb * out;
      T* gCi = gC + i * nb * out;
      const Basis<T> feature_basis = basis.feature(i);
      for (int64_t n0 = 0; n0 < N; n0 += kTile) {
        const int64_t rows = std::min<int64_t>(kTile, N - n0);
        feature_basis.bspline(x + n0 * in + i, in, rows, true, tile);
        for (int64_t t = 0; t < rows; ++t) {
          int64_t r0, r1;
          clip(tile.start[t], tile.count, nb, r0, r1);
          const T* __restrict__ g = gy + (n0 + t) * out;
          T grad = 0;
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t m = tile.start[t] + r;
            const T v = tile.val[r][t];
            const T* __restrict__ c = Ci + m * out;
            T* __restrict__ gc = gCi + m * out;
            T dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int64_t j = 0; j < out; ++j) {
              dot += c[j] * g[j];
              gc[j] += v * g[j];
            }
            grad += tile.der[r][t] * dot;
          }
          gx[(n0 + t) * in + i] = grad;
        }
      }
    }
  });
}

// Dense bases (RBF, Chebyshev, Fourier: every basis function is nonzero). A block of rows is evaluated
// into a (rows, n_basis * in) buffer that stays in cache and contracted by a GEMM, so the arithmetic runs
// at matrix-multiply speed while memory holds one block, never (batch, in, n_basis). The buffer is
// basis-major (column m * in + i holds basis m of input i, the coefficients permuted to match), so each
// basis is computed for a whole row of inputs in one contiguous loop the compiler vectorizes. Fourier
// bases of frequencies 1..F come from cos(x) and sin(x) by angle addition (two transcendental calls per
// input instead of 2F); the backward derives every basis derivative from the recomputed values, so no
// derivative buffer is kept.
constexpr int64_t kBlockFloats = 32768;  // one block's buffer: 128 KB of float32, small enough for L2
constexpr int64_t kMinBlockRows = 64;

template <typename T>
struct DenseBasis {
  int64_t family;
  int64_t in, nb;
  // RBF: center of basis m for input i at [m * in + i], and each input's spacing (shared grids repeated).
  std::vector<T> centers, spacing;
  // Fourier: nb / 2 frequencies; `unit` when they are exactly 1..F (angle addition applies).
  const T* freq = nullptr;
  bool unit = false;
  // Per-row inputs prepared for the whole batch by one vectorized op: tanh(x) (Chebyshev) or cos(x) and
  // sin(x) (Fourier, unit frequencies).
  torch::Tensor first, second;

  DenseBasis(int64_t family_, const torch::Tensor& x, const torch::Tensor& params, int64_t nb_)
      : family(family_), in(x.size(1)), nb(nb_) {
    const T* p = params.template data_ptr<T>();
    if (family == kRBF) {
      const bool per_feature = params.dim() == 2;
      const int64_t n = per_feature ? params.size(1) : params.numel();
      centers.resize(nb * in);
      spacing.resize(in);
      for (int64_t i = 0; i < in; ++i) {
        const T* c = per_feature ? p + i * n : p;
        spacing[i] = n > 1 ? c[1] - c[0] : T(1);
        for (int64_t m = 0; m < nb; ++m) centers[m * in + i] = c[m];
      }
    } else if (family == kChebyshev) {
      first = at::tanh(x);
    } else {
      freq = p;
      unit = true;
      for (int64_t k = 0; k < nb / 2; ++k) unit = unit && p[k] == T(k + 1);
      if (unit) {
        first = at::cos(x);
        second = at::sin(x);
      }
    }
  }

  // Basis values of rows [n0, n0 + rows) into v (rows, nb * in). RBF leaves the exponent; see exp_ below.
  void fill(const T* x, int64_t n0, int64_t rows, T* v) const {
    const int64_t K = nb * in;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = (n0 + r) * in;
      T* __restrict__ vr = v + r * K;
      if (family == kChebyshev) {
        const T* __restrict__ t = first.template data_ptr<T>() + row;
        for (int64_t i = 0; i < in; ++i) vr[i] = T(1);
        if (nb > 1) std::copy(t, t + in, vr + in);
        for (int64_t m = 2; m < nb; ++m) {
          T* __restrict__ cur = vr + m * in;
          const T* __restrict__ a = cur - in;
          const T* __restrict__ b = cur - 2 * in;
#pragma omp simd
          for (int64_t i = 0; i < in; ++i) cur[i] = T(2) * t[i] * a[i] - b[i];
        }
      } else if (family == kRBF) {
        const T* __restrict__ xr = x + row;
        for (int64_t m = 0; m < nb; ++m) {
          T* __restrict__ cur = vr + m * in;
          const T* __restrict__ c = centers.data() + m * in;
#pragma omp simd
          for (int64_t i = 0; i < in; ++i) {
            const T d = (xr[i] - c[i]) / spacing[i];
            cur[i] = -(d * d);
          }
        }
      } else {
        const int64_t F = nb / 2;
        if (unit) {
          const T* __restrict__ c1 = first.template data_ptr<T>() + row;
          const T* __restrict__ s1 = second.template data_ptr<T>() + row;
          std::copy(c1, c1 + in, vr);
          std::copy(s1, s1 + in, vr + F * in);
          for (int64_t k = 1; k < F; ++k) {
            const T* __restrict__ pc = vr + (k - 1) * in;
            const T* __restrict__ ps = vr + (F + k - 1) * in;
            T* __restrict__ c = vr + k * in;
            T* __restrict__ s = vr + (F + k) * in;
#pragma omp simd
            for (int64_t i = 0; i < in; ++i) {
              c[i] = pc[i] * c1[i] - ps[i] * s1[i];
              s[i] = ps[i] * c1[i] + pc[i] * s1[i];
            }
          }
        } else {
          const T* xr = x + row;
          for (int64_t k = 0; k < F; ++k)
            for (int64_t i = 0; i < in; ++i) {
              vr[k * in + i] = std::cos(xr[i] * freq[k]);
              vr[(F + k) * in + i] = std::sin(xr[i] * freq[k]);
            }
        }
      }
    }
  }

  // gx[n, i] = sum_m U[n, m * in + i] dB_m/dx (x[n, i]) for the block's rows, from the values v.
  void input_grad(const T* x, int64_t n0, int64_t rows, const T* v, const T* U, T* gx) const {
    const int64_t K = nb * in;
    std::vector<T> acc(in), d_prev(in), d_cur(in), d_next(in);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = (n0 + r) * in;
      const T* __restrict__ vr = v + r * K;
      const T* __restrict__ ur = U + r * K;
      T* __restrict__ g = acc.data();
      std::fill(acc.begin(), acc.end(), T(0));
      if (family == kChebyshev) {
        // dT_m/dt by T'_m = 2 T_{m-1} + 2 t T'_{m-1} - T'_{m-2}; dt/dx = 1 - t^2.
        const T* __restrict__ t = first.template data_ptr<T>() + row;
        T* __restrict__ dp = d_prev.data();
        T* __restrict__ dc = d_cur.data();
        T* __restrict__ dn = d_next.data();
        if (nb > 1) {
#pragma omp simd
          for (int64_t i = 0; i < in; ++i) { g[i] = ur[in + i]; dp[i] = T(0); dc[i] = T(1); }
        }
        for (int64_t m = 2; m < nb; ++m) {
          const T* __restrict__ lower = vr + (m - 1) * in;
          const T* __restrict__ um = ur + m * in;
#pragma omp simd
          for (int64_t i = 0; i < in; ++i) {
            dn[i] = T(2) * lower[i] + T(2) * t[i] * dc[i] - dp[i];
            g[i] += um[i] * dn[i];
            dp[i] = dc[i];
            dc[i] = dn[i];
          }
        }
        T* __restrict__ out = gx + row;
#pragma omp simd
        for (int64_t i = 0; i < in; ++i) out[i] = g[i] * (T(1) - t[i] * t[i]);
        continue;
      }
      if (family == kRBF) {
        // d/dx exp(-d^2) = -2 d / h exp(-d^2), d = (x - c) / h
        const T* __restrict__ xr = x + row;
        for (int64_t m = 0; m < nb; ++m) {
          const T* __restrict__ c = centers.data() + m * in;
          const T* __restrict__ vm = vr + m * in;
          const T* __restrict__ um = ur + m * in;
#pragma omp simd
          for (int64_t i = 0; i < in; ++i) {
            const T d = (xr[i] - c[i]) / spacing[i];
            g[i] += um[i] * (T(-2) * d / spacing[i] * vm[i]);
          }
        }
      } else {
        // d/dx cos(f x) = -f sin(f x), d/dx sin(f x) = f cos(f x)
        const int64_t F = nb / 2;
        for (int64_t k = 0; k < F; ++k) {
          const T f = freq[k];
          const T* __restrict__ c = vr + k * in;
          const T* __restrict__ s = vr + (F + k) * in;
          const T* __restrict__ uc = ur + k * in;
          const T* __restrict__ us = ur + (F + k) * in;
#pragma omp simd
          for (int64_t i = 0; i < in; ++i) g[i] += f * (us[i] * c[i] - uc[i] * s[i]);
        }
      }
      std::copy(acc.begin(), acc.end(), gx + row);
    }
  }
};

inline int64_t block_rows(int64_t N, int64_t K) {
  return std::min(N, std::max(kMinBlockRows, kBlockFloats / std::max<int64_t>(K, 1)));
}

// The block's basis values: fill, then (RBF) one vectorized exp over the block.
template <typename T>
torch::Tensor block_values(const DenseBasis<T>& basis, const torch::Tensor& x, int64_t n0, int64_t rows,
                           torch::Tensor& buffer) {
  auto block = buffer.narrow(0, 0, rows);
  basis.fill(x.template data_ptr<T>(), n0, rows, block.template data_ptr<T>());
  if (basis.family == kRBF) block.exp_();
  return block;
}

// C (in, nb, out) -> (nb * in, out), the row order of the basis-major buffer.
inline torch::Tensor basis_major(const torch::Tensor& C) {
  return C.permute({1, 0, 2}).contiguous().view({C.size(0) * C.size(1), C.size(2)});
}

template <typename T>
torch::Tensor dense_forward(const torch::Tensor& x, const torch::Tensor& C, const torch::Tensor& params,
                            int64_t family) {
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2), K = nb * in;
  const DenseBasis<T> basis(family, x, params, nb);
  const auto coef = basis_major(C);
  auto y = torch::empty({N, out}, x.options());
  const int64_t step = block_rows(N, K);
  auto buffer = torch::empty({step, K}, x.options());
  for (int64_t n0 = 0; n0 < N; n0 += step) {
    const int64_t rows = std::min(step, N - n0);
    auto target = y.narrow(0, n0, rows);
    at::mm_out(target, block_values(basis, x, n0, rows, buffer), coef);
  }
  return y;
}

template <typename T>
std::vector<torch::Tensor> dense_backward(const torch::Tensor& grad, const torch::Tensor& x, const torch::Tensor& C,
                                          const torch::Tensor& params, int64_t family) {
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2), K = nb * in;
  const DenseBasis<T> basis(family, x, params, nb);
  const auto coef = basis_major(C);
  auto g_coef = torch::zeros({K, out}, x.options());
  auto gx = torch::empty({N, in}, x.options());
  const int64_t step = block_rows(N, K);
  auto buffer = torch::empty({step, K}, x.options());
  auto upstream = torch::empty({step, K}, x.options());  // dL/dB for every basis value of the block
  for (int64_t n0 = 0; n0 < N; n0 += step) {
    const int64_t rows = std::min(step, N - n0);
    auto values = block_values(basis, x, n0, rows, buffer);
    auto g = grad.narrow(0, n0, rows);
    g_coef.addmm_(values.t(), g);
    auto u = upstream.narrow(0, 0, rows);
    at::mm_out(u, g, coef.t());
    basis.input_grad(x.template data_ptr<T>(), n0, rows, values.template data_ptr<T>(), u.template data_ptr<T>(),
                     gx.template data_ptr<T>());
  }
  return {gx, g_coef.view({nb, in, out}).permute({1, 0, 2}).contiguous()};
}

template <typename T>
Basis<T> make_basis(const torch::Tensor& params, int64_t order, int64_t n_basis) {
  Basis<T> basis{params.data_ptr<T>(), params.numel(), order, n_basis};
  if (params.dim() == 2) {  // a grid per input feature
    basis.n_p = params.size(1);
    basis.p_stride = params.size(1);
  }
  return basis;
}

void check_inputs(const torch::Tensor& x, const torch::Tensor& C, const torch::Tensor& params, int64_t family,
                  int64_t order) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x must be a contiguous CPU (N, in) tensor");
  TORCH_CHECK(C.dim() == 3 && C.is_contiguous() && C.size(0) == x.size(1), "coefficients must be (in, n_basis, out)");
  TORCH_CHECK(C.scalar_type() == x.scalar_type() && params.scalar_type() == x.scalar_type(), "dtypes must match");
  TORCH_CHECK(C.size(1) <= kMaxBasis, "at most 64 basis functions per input");
  TORCH_CHECK(family != kBSpline || order <= kMaxOrder, "spline order at most 15");
  TORCH_CHECK(params.is_contiguous() && (params.dim() <= 1 || ((family == kBSpline || family == kRBF) &&
                                                                params.dim() == 2 && params.size(0) == x.size(1))),
              "params must be contiguous, (n,) or, for B-splines and RBF, (in, n) per input feature");
}

torch::Tensor basis_forward(torch::Tensor x, torch::Tensor C, int64_t family, torch::Tensor params, int64_t order) {
  check_inputs(x, C, params, family, order);
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2);
  if (family != kBSpline) {
    torch::Tensor y;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dense_forward", [&] { y = dense_forward<scalar_t>(x, C, params, family); });
    return y;
  }
  auto y = torch::zeros({N, out}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "basis_forward", [&] {
    basis_forward_impl<scalar_t>(x.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N, in, out,
                                 make_basis<scalar_t>(params, order, nb));
  });
  return y;
}

std::vector<torch::Tensor> basis_backward(torch::Tensor grad, torch::Tensor x, torch::Tensor C, int64_t family,
                                          torch::Tensor params, int64_t order) {
  check_inputs(x, C, params, family, order);
  grad = grad.contiguous();
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2);
  if (family != kBSpline) {
    std::vector<torch::Tensor> grads;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dense_backward", [&] {
      grads = dense_backward<scalar_t>(grad, x, C, params, family);
    });
    return grads;
  }
  auto gx = torch::empty_like(x);
  auto gC = torch::zeros_like(C);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "basis_backward", [&] {
    basis_backward_impl<scalar_t>(x.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                  gx.data_ptr<scalar_t>(), gC.data_ptr<scalar_t>(), N, in, out,
                                  make_basis<scalar_t>(params, order, nb));
  });
  return {gx, gC};
}

// ------------------------------------------------------------------------------------------- rational
// x viewed as (rows, groups, group_size); numerator (groups, m + 1); denominator (groups, n) holds
// b_1..b_n. safe_abs: D = 1 + |sum_k b_k x^k|; otherwise D = 1 + sum_k |b_k| |x|^k.

template <typename T, int NA, int NB, bool SAFE>
inline void rational_point(T x, const T* a, int64_t na_, const T* b, int64_t nb_, T& P, T& dP, T& Q, T& dQ) {
  // NA, NB: the degrees at compile time, or 0 for run time; SAFE: safe_abs. Both are template arguments
  // because a run-time branch in the element loop, even a loop-invariant one, stops GCC vectorizing it.
  const int64_t na = NA > 0 ? NA : na_, nb = NB > 0 ? NB : nb_;
  P = a[na - 1];
  dP = 0;
  for (int64_t i = na - 2; i >= 0; --i) { dP = dP * x + P; P = P * x + a[i]; }
  const T z = SAFE ? x : std::abs(x);
  Q = 0;
  dQ = 0;  // d/dz of sum_k c_k z^k
  for (int64_t i = nb - 1; i >= 0; --i) {
    const T c = SAFE ? b[i] : std::abs(b[i]);
    dQ = dQ * z + Q;
    Q = Q * z + c;
  }
  dQ = dQ * z + Q;  // the sum starts at z^1: Q(z) = z * (c_1 + c_2 z + ...)
  Q = Q * z;
}

template <typename T, int NA, int NB, bool SAFE>
void rational_forward_impl(const T* x, const T* a, const T* b, T* y, int64_t rows, int64_t groups, int64_t size,
                           int64_t na, int64_t nb) {
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        const T* ag = a + g * na;
        const T* bg = b + g * nb;
        const int64_t base = (r * groups + g) * size;
#pragma omp simd
        for (int64_t e = 0; e < size; ++e) {
          T P, dP, Q, dQ;
          rational_point<T, NA, NB, SAFE>(x[base + e], ag, na, bg, nb, P, dP, Q, dQ);
          y[base + e] = P / (T(1) + std::abs(Q));
        }
      }
  });
}

template <typename T, int NA, int NB, bool SAFE>
void rational_backward_impl(const T* x, const T* a, const T* b, const T* gy, T* gx, T* ga, T* gb, int64_t rows,
                            int64_t groups, int64_t size, int64_t na_, int64_t nb_) {
  // Over groups: each owns its coefficient gradients. One vectorized pass per row of a group gives the
  // input gradient and adds each coefficient's term into a per-element (lane) accumulator; the lanes are
  // summed into double accumulators every kFlushRows rows, so there is no horizontal sum per row and the
  // long sums keep their digits.
  constexpr int64_t kFlushRows = 32;
  const int64_t na = NA > 0 ? NA : na_, nb = NB > 0 ? NB : nb_;
  at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    std::vector<T> lane_a(na * size), lane_b(nb * size);
    for (int64_t g = g0; g < g1; ++g) {
      const T* ag = a + g * na;
      const T* bg = b + g * nb;
      T sb[64];
      for (int64_t i = 0; i < nb; ++i) sb[i] = SAFE ? T(1) : (bg[i] > 0 ? T(1) : (bg[i] < 0 ? T(-1) : T(0)));
      double acc_a[64] = {0}, acc_b[64] = {0};
      std::fill(lane_a.begin(), lane_a.end(), T(0));
      std::fill(lane_b.begin(), lane_b.end(), T(0));
      T* la = lane_a.data();
      T* lb = lane_b.data();
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t base = (r * groups + g) * size;
#pragma omp simd
        for (int64_t e = 0; e < size; ++e) {
          const T xv = x[base + e];
          T P, dP, Q, dQ;
          rational_point<T, NA, NB, SAFE>(xv, ag, na, bg, nb, P, dP, Q, dQ);
          const T sq = !SAFE ? T(1) : (Q > 0 ? T(1) : (Q < 0 ? T(-1) : T(0)));
          const T D = T(1) + std::abs(Q);
          const T u = gy[base + e] / D;                   // dL/dP
          const T v = -gy[base + e] * P * sq / (D * D);   // dL/d|Q|, times sign(Q)
          const T sx = SAFE ? T(1) : (xv > 0 ? T(1) : (xv < 0 ? T(-1) : T(0)));
          gx[base + e] = u * dP + v * dQ * sx;
          const T z = SAFE ? xv : std::abs(xv);
          T power = 1;
          for (int64_t i = 0; i < na; ++i) { la[i * size + e] += u * power; power *= xv; }
          power = z;
          for (int64_t i = 0; i < nb; ++i) { lb[i * size + e] += v * power; power *= z; }
        }
        if ((r + 1) % kFlushRows == 0 || r + 1 == rows) {
          for (int64_t i = 0; i < na; ++i)
            for (int64_t e = 0; e < size; ++e) { acc_a[i] += la[i * size + e]; la[i * size + e] = 0; }
          for (int64_t i = 0; i < nb; ++i)
            for (int64_t e = 0; e < size; ++e) { acc_b[i] += lb[i * size + e]; lb[i * size + e] = 0; }
        }
      }
      for (int64_t i = 0; i < na; ++i) ga[g * na + i] = static_cast<T>(acc_a[i]);
      for (int64_t i = 0; i < nb; ++i) gb[g * nb + i] = static_cast<T>(acc_b[i] * sb[i]);
    }
  });
}

void check_rational(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& b) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3 && x.is_contiguous(), "x must be contiguous (rows, groups, size)");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) == x.size(1) && b.size(0) == x.size(1),
              "coefficients must be (groups, degree)");
  TORCH_CHECK(a.size(1) <= 64 && b.size(1) <= 64, "degrees up to 63");
  TORCH_CHECK(a.scalar_type() == x.scalar_type() && b.scalar_type() == x.scalar_type(), "dtypes must match");
}

torch::Tensor rational_forward(torch::Tensor x, torch::Tensor a, torch::Tensor b, bool safe_abs) {
  a = a.contiguous();
  b = b.contiguous();
  check_rational(x, a, b);
  auto y = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rational_forward", [&] {
    const bool fixed = a.size(1) == 6 && b.size(1) == 4;
    auto run = fixed ? (safe_abs ? rational_forward_impl<scalar_t, 6, 4, true> : rational_forward_impl<scalar_t, 6, 4, false>)
                     : (safe_abs ? rational_forward_impl<scalar_t, 0, 0, true> : rational_forward_impl<scalar_t, 0, 0, false>);
    run(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), x.size(0),
        x.size(1), x.size(2), a.size(1), b.size(1));
  });
  return y;
}

std::vector<torch::Tensor> rational_backward(torch::Tensor grad, torch::Tensor x, torch::Tensor a, torch::Tensor b,
                                             bool safe_abs) {
  a = a.contiguous();
  b = b.contiguous();
  grad = grad.contiguous();
  check_rational(x, a, b);
  auto gx = torch::empty_like(x);
  auto ga = torch::empty_like(a);
  auto gb = torch::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rational_backward", [&] {
    const bool fixed = a.size(1) == 6 && b.size(1) == 4;
    auto run = fixed ? (safe_abs ? rational_backward_impl<scalar_t, 6, 4, true> : rational_backward_impl<scalar_t, 6, 4, false>)
                     : (safe_abs ? rational_backward_impl<scalar_t, 0, 0, true> : rational_backward_impl<scalar_t, 0, 0, false>);
    run(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
        gx.data_ptr<scalar_t>(), ga.data_ptr<scalar_t>(), gb.data_ptr<scalar_t>(), x.size(0), x.size(1), x.size(2),
        a.size(1), b.size(1));
  });
  return {gx, ga, gb};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("basis_forward", &basis_forward, "fused KAN basis evaluation and contraction");
  m.def("basis_backward", &basis_backward, "its backward: gradients of x and of the coefficients");
  m.def("rational_forward", &rational_forward, "safe rational function per channel group");
  m.def("rational_backward", &rational_backward, "its closed-form backward");
}
