// Fused CPU kernels for Kolmogorov-Arnold layers and rational activations (archsearch.kernels).
//
// basis_forward / basis_backward: y[n, :] = sum_i sum_m B_m(x[n, i]) C[i, m, :] without the (batch, in,
// n_basis) tensor of basis values. B-splines: the bases are evaluated in registers and only the order + 1
// whose support contains x are touched. Dense bases (RBF, Chebyshev, Fourier): a block of 128 rows is
// evaluated into a buffer that stays in cache and contracted by a GEMM. The basis
// parameters (knots, centers, frequencies) are tensors read at run time, so grids may move.
//
// rational_forward / rational_backward: F(x) = P(x) / (1 + |Q(x)|) per channel group (KAT's safe form)
// or P(x) / (1 + sum_k |b_k| |x|^k) (PAU's safe form), with the closed-form derivative in one pass.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t kMaxBasis = 64;
constexpr int64_t kMaxOrder = 15;
constexpr int64_t kTile = 16;  // inputs whose bases are evaluated together (vectorized across the tile)
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
struct Basis {
  int64_t family;
  const T* p;        // knots / centers / frequencies
  int64_t n_p;
  int64_t order;     // spline order (B-spline) or degree (Chebyshev)
  int64_t n_basis;
  bool integer_frequencies;  // Fourier frequencies are exactly 1..n_p: angle-addition recurrence
  bool given_tanh = false;   // Chebyshev: x already holds tanh(x) (computed vectorized for a block)
  int64_t p_stride = 0;      // a grid per input feature (in, n_p), B-splines and RBF: the next feature's

  Basis feature(int64_t i) const {
    Basis b = *this;
    b.p = p + i * p_stride;
    return b;
  }

  void eval(const T* x, int64_t stride, int64_t n, bool with_der, Tile<T>& tile) const {
    switch (family) {
      case kBSpline: bspline(x, stride, n, with_der, tile); break;
      case kRBF: rbf(x, stride, n, with_der, tile); break;
      case kChebyshev: chebyshev(x, stride, n, with_der, tile); break;
      default: fourier(x, stride, n, with_der, tile); break;
    }
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

  // exp(-((x - c_m) / h)^2). In float32, one exp at the nearest center m*, then ratios outwards,
  // g_{m+1} = g_m exp(2(v - m) - 1) and g_{m-1} = g_m exp(-2(v - m) - 1) with v = (x - c_0) / h, each
  // ratio the previous times exp(-2): three exps per input instead of one per center, exact for uniform
  // centers up to float32 rounding. In float64 (used to check), one exp per center from the stored
  // centers, as the eager block computes it.
  void rbf(const T* x, int64_t stride, int64_t n, bool with_der, Tile<T>& tile) const {
    const T h = n_p > 1 ? p[1] - p[0] : T(1);
    const T e2 = std::exp(T(-2));
    for (int64_t i = 0; i < n; ++i) {
      const T xv = x[i * stride];
      if (std::is_same<T, double>::value) {
        for (int64_t m = 0; m < n_p; ++m) { const T d = (xv - p[m]) / h; tile.val[m][i] = std::exp(-d * d); }
      } else {
        const T v = (xv - p[0]) / h;
        T c = std::nearbyint(v);
        c = c < 0 ? T(0) : (c > T(n_p - 1) ? T(n_p - 1) : c);
        const int64_t m0 = std::isnan(v) ? 0 : static_cast<int64_t>(c);
        const T d = (xv - p[m0]) / h;
        const T g0 = std::exp(-d * d);
        tile.val[m0][i] = g0;
        T g = g0, ratio = std::exp(2 * d - 1);
        for (int64_t m = m0 + 1; m < n_p; ++m) { g = g == T(0) ? T(0) : g * ratio; ratio *= e2; tile.val[m][i] = g; }
        g = g0;
        ratio = std::exp(-2 * d - 1);
        for (int64_t m = m0 - 1; m >= 0; --m) { g = g == T(0) ? T(0) : g * ratio; ratio *= e2; tile.val[m][i] = g; }
      }
      if (with_der)
        for (int64_t m = 0; m < n_p; ++m) tile.der[m][i] = T(-2) * ((xv - p[m]) / h) / h * tile.val[m][i];
      tile.start[i] = 0;
    }
    tile.count = n_p;
  }

  void chebyshev(const T* x, int64_t stride, int64_t n, bool with_der, Tile<T>& tile) const {
    for (int64_t i = 0; i < n; ++i) {
      const T t = given_tanh ? x[i * stride] : std::tanh(x[i * stride]), dt = T(1) - t * t;
      auto& V = tile.val;
      V[0][i] = 1;
      if (order >= 1) V[1][i] = t;
      for (int64_t m = 2; m <= order; ++m) V[m][i] = 2 * t * V[m - 1][i] - V[m - 2][i];
      if (with_der) {
        T d_prev = 0, d_cur = 1;  // dT_0/dt, dT_1/dt
        tile.der[0][i] = 0;
        if (order >= 1) tile.der[1][i] = dt;
        for (int64_t m = 2; m <= order; ++m) {
          const T d_next = 2 * V[m - 1][i] + 2 * t * d_cur - d_prev;
          d_prev = d_cur;
          d_cur = d_next;
          tile.der[m][i] = d_next * dt;
        }
      }
      tile.start[i] = 0;
    }
    tile.count = order + 1;
  }

  void fourier(const T* x, int64_t stride, int64_t n, bool with_der, Tile<T>& tile) const {
    for (int64_t i = 0; i < n; ++i) {
      const T xv = x[i * stride];
      T c1 = 0, s1 = 0, c = 0, s = 0;
      if (integer_frequencies) { c1 = std::cos(xv); s1 = std::sin(xv); c = c1; s = s1; }
      for (int64_t m = 0; m < n_p; ++m) {
        if (!integer_frequencies) { c = std::cos(xv * p[m]); s = std::sin(xv * p[m]); }
        else if (m > 0) { const T c_next = c * c1 - s * s1; s = s * c1 + c * s1; c = c_next; }
        tile.val[m][i] = c;
        tile.val[n_p + m][i] = s;
        if (with_der) { tile.der[m][i] = -p[m] * s; tile.der[n_p + m][i] = p[m] * c; }
      }
      tile.start[i] = 0;
    }
    tile.count = 2 * n_p;
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
        basis.feature(i).eval(x + n0 * in + i, in, rows, false, tile);
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
        feature_basis.eval(x + n0 * in + i, in, rows, true, tile);
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

// Dense bases (RBF, Chebyshev, Fourier: every basis function is nonzero): the basis of a block of rows is
// evaluated into a (rows, in * n_basis) buffer that stays in cache, and contracted by a GEMM, so the
// arithmetic runs at matrix-multiply speed while memory holds one block, never (batch, in, n_basis).
constexpr int64_t kRowsPerGemm = 128;

template <typename T>
void fill_block(const T* x, int64_t in, int64_t rows, const Basis<T>& basis, bool with_der, T* vals, T* ders) {
  const int64_t nb = basis.n_basis, width = in * nb;
  Tile<T> tile;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    const int64_t n = std::min<int64_t>(kTile, rows - r0);
    for (int64_t i = 0; i < in; ++i) {
      basis.eval(x + r0 * in + i, in, n, with_der, tile);
      for (int64_t t = 0; t < n; ++t) {
        T* v = vals + (r0 + t) * width + i * nb;
        for (int64_t m = 0; m < nb; ++m) v[m] = tile.val[m][t];
        if (with_der) {
          T* d = ders + (r0 + t) * width + i * nb;
          for (int64_t m = 0; m < nb; ++m) d[m] = tile.der[m][t];
        }
      }
    }
  }
}

// RBF and Fourier blocks with torch's vectorized exp / cos / sin, written straight into the block buffer.
template <typename T>
bool vectorized_block(const torch::Tensor& xb, const Basis<T>& basis, const torch::Tensor& params, bool with_der,
                      torch::Tensor vals, torch::Tensor ders) {
  const int64_t rows = xb.size(0), in = xb.size(1), nb = basis.n_basis;
  if (basis.family == kRBF) {
    // Spacing h: one for shared centers (n,), one per input feature for centers (in, n).
    const auto h = nb < 2 ? torch::ones({}, params.options())
                          : (params.narrow(-1, 1, 1) - params.narrow(-1, 0, 1)).squeeze(-1).unsqueeze(-1);
    auto d = (xb.unsqueeze(-1) - params).div_(h);  // (rows, in, nb)
    auto v = vals.view({rows, in, nb});
    at::mul_out(v, d, d);
    v.neg_().exp_();
    if (with_der) {
      auto dv = ders.view({rows, in, nb});
      at::mul_out(dv, d, v).mul_(-2.0).div_(h);
    }
    return true;
  }
  if (basis.family == kFourier) {
    const int64_t F = params.numel();
    auto angles = xb.unsqueeze(-1) * params;  // (rows, in, F)
    auto v = vals.view({rows, in, nb});
    auto c = angles.cos(), s = angles.sin();
    v.narrow(-1, 0, F).copy_(c);
    v.narrow(-1, F, F).copy_(s);
    if (with_der) {
      auto d = ders.view({rows, in, nb});
      auto d_cos = d.narrow(-1, 0, F), d_sin = d.narrow(-1, F, F);
      at::mul_out(d_cos, s, params).neg_();
      at::mul_out(d_sin, c, params);
    }
    return true;
  }
  return false;
}

// The rows of a block as the basis reads them: tanh(x) for Chebyshev, one vectorized op for the block.
template <typename T>
torch::Tensor block_input(const torch::Tensor& x, int64_t n0, int64_t rows, const Basis<T>& basis) {
  auto block = x.narrow(0, n0, rows);
  return basis.family == kChebyshev ? at::tanh(block).contiguous() : block;
}

template <typename T>
Basis<T> with_given_tanh(Basis<T> basis) {
  basis.given_tanh = basis.family == kChebyshev;
  return basis;
}

template <typename T>
torch::Tensor dense_forward(const torch::Tensor& x, const torch::Tensor& C, const Basis<T>& basis,
                            const torch::Tensor& params) {
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2);
  auto flat = C.view({in * nb, out});
  auto y = torch::empty({N, out}, x.options());
  auto vals = torch::empty({std::min(N, kRowsPerGemm), in * nb}, x.options());
  for (int64_t n0 = 0; n0 < N; n0 += kRowsPerGemm) {
    const int64_t rows = std::min(kRowsPerGemm, N - n0);
    auto block = vals.narrow(0, 0, rows);
    if (!vectorized_block<T>(x.narrow(0, n0, rows), basis, params, false, block, block)) {
      auto source = block_input<T>(x, n0, rows, basis);
      fill_block<T>(source.template data_ptr<T>(), in, rows, with_given_tanh(basis), false, vals.data_ptr<T>(),
                    nullptr);
    }
    auto target = y.narrow(0, n0, rows);
    at::mm_out(target, vals.narrow(0, 0, rows), flat);
  }
  return y;
}

template <typename T>
std::vector<torch::Tensor> dense_backward(const torch::Tensor& grad, const torch::Tensor& x, const torch::Tensor& C,
                                          const Basis<T>& basis, const torch::Tensor& params) {
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2);
  auto flat = C.view({in * nb, out});
  auto gC = torch::zeros({in * nb, out}, x.options());
  auto gx = torch::empty({N, in}, x.options());
  const int64_t block = std::min(N, kRowsPerGemm);
  auto vals = torch::empty({block, in * nb}, x.options());
  auto ders = torch::empty({block, in * nb}, x.options());
  for (int64_t n0 = 0; n0 < N; n0 += kRowsPerGemm) {
    const int64_t rows = std::min(kRowsPerGemm, N - n0);
    if (!vectorized_block<T>(x.narrow(0, n0, rows), basis, params, true, vals.narrow(0, 0, rows),
                             ders.narrow(0, 0, rows))) {
      auto source = block_input<T>(x, n0, rows, basis);
      fill_block<T>(source.template data_ptr<T>(), in, rows, with_given_tanh(basis), true, vals.data_ptr<T>(),
                    ders.data_ptr<T>());
    }
    auto g = grad.narrow(0, n0, rows);
    gC.addmm_(vals.narrow(0, 0, rows).t(), g);
    auto upstream = at::mm(g, flat.t());  // (rows, in * nb): dL/dB for every basis value of the block
    gx.narrow(0, n0, rows).copy_((upstream.mul_(ders.narrow(0, 0, rows))).view({rows, in, nb}).sum(-1));
  }
  return {gx, gC.view({in, nb, out})};
}

template <typename T>
Basis<T> make_basis(int64_t family, const torch::Tensor& params, int64_t order, int64_t n_basis) {
  bool integer = family == kFourier;
  const T* f = params.data_ptr<T>();
  for (int64_t m = 0; integer && m < params.numel(); ++m) integer = f[m] == T(m + 1);
  Basis<T> basis{family, f, params.numel(), order, n_basis, integer};
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
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dense_forward", [&] {
      y = dense_forward<scalar_t>(x, C, make_basis<scalar_t>(family, params, order, nb), params);
    });
    return y;
  }
  auto y = torch::zeros({N, out}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "basis_forward", [&] {
    basis_forward_impl<scalar_t>(x.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N, in, out,
                                 make_basis<scalar_t>(family, params, order, nb));
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
      grads = dense_backward<scalar_t>(grad, x, C, make_basis<scalar_t>(family, params, order, nb), params);
    });
    return grads;
  }
  auto gx = torch::empty_like(x);
  auto gC = torch::zeros_like(C);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "basis_backward", [&] {
    basis_backward_impl<scalar_t>(x.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                  gx.data_ptr<scalar_t>(), gC.data_ptr<scalar_t>(), N, in, out,
                                  make_basis<scalar_t>(family, params, order, nb));
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
