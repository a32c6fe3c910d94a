// Fused CPU kernels for Kolmogorov-Arnold layers and rational activations (archsearch.kernels).
//
// basis_forward / basis_backward: y[n, :] = sum_i sum_m B_m(x[n, i]) C[i, m, :] with the basis evaluated
// in registers, one input value at a time, so the (batch, in, n_basis) tensor of basis values is never
// written to memory. B-splines touch only the order + 1 bases whose support contains x. The basis
// parameters (knots, centers, frequencies) are tensors read at run time, so grids may move.
//
// rational_forward / rational_backward: F(x) = P(x) / (1 + |Q(x)|) per channel group (KAT's safe form)
// or P(x) / (1 + sum_k |b_k| |x|^k) (PAU's safe form), with the closed-form derivative in one pass.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace {

constexpr int kMaxBasis = 256;
enum Family : int64_t { kBSpline = 0, kRBF = 1, kChebyshev = 2, kFourier = 3 };

// Values (and derivatives, when der != nullptr) of the basis functions of x that can be nonzero:
// entries r = 0..count-1 are basis functions start + r. Returns count.
template <typename T>
struct Basis {
  int64_t family;
  const T* p;        // knots / centers / frequencies
  int64_t n_p;
  int64_t order;     // spline order (B-spline) or degree (Chebyshev)
  int64_t n_basis;

  inline int64_t eval(T x, T* val, T* der, int64_t& start) const {
    switch (family) {
      case kBSpline: return bspline(x, val, der, start);
      case kRBF: return rbf(x, val, der, start);
      case kChebyshev: return chebyshev(x, val, der, start);
      default: return fourier(x, val, der, start);
    }
  }

  // Cox-de Boor on the local triangle of the span s with t_s <= x < t_{s+1}; bases outside
  // [0, n_basis) are zero, as in the eager recursion over the whole knot vector. Knots are uniform
  // (spacing h = t_1 - t_0, every denominator q * h), as the eager block assumes; their values are read
  // from the tensor, so a grid that moves or rescales needs no rebuild.
  inline int64_t bspline(T x, T* val, T* der, int64_t& start) const {
    const T* t = p;
    const int64_t K = n_p, k = order;
    start = 0;
    if (!(x >= t[0] && x < t[K - 1])) return 0;  // outside the knots (and NaN): every basis is zero
    const T h = t[1] - t[0];
    T guess = std::floor((x - t[0]) / h);
    int64_t s = guess < 0 ? 0 : (guess > T(K - 2) ? K - 2 : static_cast<int64_t>(guess));
    while (s > 0 && x < t[s]) --s;
    while (s < K - 2 && x >= t[s + 1]) ++s;
    T N[kMaxBasis + 1], low[kMaxBasis + 1];
    for (int64_t r = 0; r <= k; ++r) N[r] = 0;
    N[k] = 1;  // level 0: only B_s
    for (int64_t q = 1; q <= k; ++q) {
      if (q == k) for (int64_t r = 0; r <= k; ++r) low[r] = N[r];
      for (int64_t r = k - q; r <= k; ++r) {
        const int64_t j = s - k + r;
        if (j < 0 || j > K - 2 - q) { N[r] = 0; continue; }
        const T next = r + 1 <= k ? N[r + 1] : T(0);
        N[r] = ((x - t[j]) * N[r] - (x - t[j + q + 1]) * next) / (T(q) * h);
      }
    }
    start = s - k;
    for (int64_t r = 0; r <= k; ++r) val[r] = N[r];
    if (der != nullptr) {
      for (int64_t r = 0; r <= k; ++r) {
        const T next = r + 1 <= k ? low[r + 1] : T(0);
        der[r] = k == 0 ? T(0) : (low[r] - next) / h;
      }
    }
    return k + 1;
  }

  inline int64_t rbf(T x, T* val, T* der, int64_t& start) const {
    const T h = n_p > 1 ? p[1] - p[0] : T(1);
    start = 0;
    for (int64_t m = 0; m < n_p; ++m) {
      const T u = (x - p[m]) / h;
      val[m] = std::exp(-u * u);
      if (der != nullptr) der[m] = T(-2) * u / h * val[m];
    }
    return n_p;
  }

  inline int64_t chebyshev(T x, T* val, T* der, int64_t& start) const {
    const T t = std::tanh(x), dt = T(1) - t * t;
    start = 0;
    val[0] = 1;
    T d_prev = 0, d_cur = 1;  // dT_0/dt, dT_1/dt
    if (der != nullptr) der[0] = 0;
    if (order >= 1) { val[1] = t; if (der != nullptr) der[1] = dt; }
    for (int64_t m = 2; m <= order; ++m) {
      val[m] = 2 * t * val[m - 1] - val[m - 2];
      const T d_next = 2 * val[m - 1] + 2 * t * d_cur - d_prev;
      d_prev = d_cur;
      d_cur = d_next;
      if (der != nullptr) der[m] = d_next * dt;
    }
    return order + 1;
  }

  inline int64_t fourier(T x, T* val, T* der, int64_t& start) const {
    start = 0;
    for (int64_t m = 0; m < n_p; ++m) {
      const T a = x * p[m], c = std::cos(a), s = std::sin(a);
      val[m] = c;
      val[n_p + m] = s;
      if (der != nullptr) { der[m] = -p[m] * s; der[n_p + m] = p[m] * c; }
    }
    return 2 * n_p;
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
  at::parallel_for(0, N, 8, [&](int64_t n0, int64_t n1) {
    T val[kMaxBasis + 1];
    for (int64_t n = n0; n < n1; ++n) {
      T* __restrict__ yr = y + n * out;
      for (int64_t i = 0; i < in; ++i) {
        int64_t start, r0, r1;
        const int64_t count = basis.eval(x[n * in + i], val, nullptr, start);
        clip(start, count, nb, r0, r1);
        const T* Ci = C + (i * nb + start) * out;
        int64_t r = r0;
        for (; r + 3 < r1; r += 4) {
          const T b0 = val[r], b1 = val[r + 1], b2 = val[r + 2], b3 = val[r + 3];
          const T* __restrict__ c0 = Ci + r * out;
          const T* __restrict__ c1 = c0 + out;
          const T* __restrict__ c2 = c1 + out;
          const T* __restrict__ c3 = c2 + out;
#pragma omp simd
          for (int64_t j = 0; j < out; ++j) yr[j] += b0 * c0[j] + b1 * c1[j] + b2 * c2[j] + b3 * c3[j];
        }
        for (; r < r1; ++r) {
          const T b = val[r];
          const T* __restrict__ c = Ci + r * out;
#pragma omp simd
          for (int64_t j = 0; j < out; ++j) yr[j] += b * c[j];
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
    T val[kMaxBasis + 1], der[kMaxBasis + 1];
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t n = 0; n < N; ++n) {
        int64_t start, r0, r1;
        const int64_t count = basis.eval(x[n * in + i], val, der, start);
        clip(start, count, nb, r0, r1);
        const T* __restrict__ g = gy + n * out;
        T grad = 0;
        for (int64_t r = r0; r < r1; ++r) {
          const T b = val[r];
          const T* __restrict__ c = C + (i * nb + start + r) * out;
          T* __restrict__ gc = gC + (i * nb + start + r) * out;
          T dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t j = 0; j < out; ++j) {
            dot += c[j] * g[j];
            gc[j] += b * g[j];
          }
          grad += der[r] * dot;
        }
        gx[n * in + i] = grad;
      }
    }
  });
}

template <typename T>
Basis<T> make_basis(int64_t family, const torch::Tensor& params, int64_t order, int64_t n_basis) {
  return Basis<T>{family, params.data_ptr<T>(), params.numel(), order, n_basis};
}

void check_inputs(const torch::Tensor& x, const torch::Tensor& C, const torch::Tensor& params) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x must be a contiguous CPU (N, in) tensor");
  TORCH_CHECK(C.dim() == 3 && C.is_contiguous() && C.size(0) == x.size(1), "coefficients must be (in, n_basis, out)");
  TORCH_CHECK(C.scalar_type() == x.scalar_type() && params.scalar_type() == x.scalar_type(), "dtypes must match");
  TORCH_CHECK(C.size(1) <= kMaxBasis, "at most 256 basis functions per input");
}

torch::Tensor basis_forward(torch::Tensor x, torch::Tensor C, int64_t family, torch::Tensor params, int64_t order) {
  check_inputs(x, C, params);
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2);
  auto y = torch::zeros({N, out}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "basis_forward", [&] {
    basis_forward_impl<scalar_t>(x.data_ptr<scalar_t>(), C.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), N, in, out,
                                 make_basis<scalar_t>(family, params, order, nb));
  });
  return y;
}

std::vector<torch::Tensor> basis_backward(torch::Tensor grad, torch::Tensor x, torch::Tensor C, int64_t family,
                                          torch::Tensor params, int64_t order) {
  check_inputs(x, C, params);
  grad = grad.contiguous();
  const int64_t N = x.size(0), in = x.size(1), nb = C.size(1), out = C.size(2);
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

template <typename T>
inline void rational_point(T x, const T* a, int64_t na, const T* b, int64_t nb, bool safe_abs, T& P, T& dP, T& Q,
                           T& dQ) {
  P = a[na - 1];
  dP = 0;
  for (int64_t i = na - 2; i >= 0; --i) { dP = dP * x + P; P = P * x + a[i]; }
  const T z = safe_abs ? x : std::abs(x);
  Q = 0;
  dQ = 0;  // d/dz of sum_k c_k z^k
  for (int64_t i = nb - 1; i >= 0; --i) {
    const T c = safe_abs ? b[i] : std::abs(b[i]);
    dQ = dQ * z + Q;
    Q = Q * z + c;
  }
  dQ = dQ * z + Q;  // the sum starts at z^1: Q(z) = z * (c_1 + c_2 z + ...)
  Q = Q * z;
}

template <typename T>
void rational_forward_impl(const T* x, const T* a, const T* b, T* y, int64_t rows, int64_t groups, int64_t size,
                           int64_t na, int64_t nb, bool safe_abs) {
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t e = 0; e < size; ++e) {
          const int64_t idx = (r * groups + g) * size + e;
          T P, dP, Q, dQ;
          rational_point(x[idx], a + g * na, na, b + g * nb, nb, safe_abs, P, dP, Q, dQ);
          y[idx] = P / (T(1) + std::abs(Q));
        }
  });
}

template <typename T>
void rational_backward_impl(const T* x, const T* a, const T* b, const T* gy, T* gx, T* ga, T* gb, int64_t rows,
                            int64_t groups, int64_t size, int64_t na, int64_t nb, bool safe_abs) {
  // Over groups: each owns its coefficient gradients.
  at::parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const T* ag = a + g * na;
      const T* bg = b + g * nb;
      T acc_a[64] = {0}, acc_b[64] = {0};
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t e = 0; e < size; ++e) {
          const int64_t idx = (r * groups + g) * size + e;
          const T xv = x[idx];
          T P, dP, Q, dQ;
          rational_point(xv, ag, na, bg, nb, safe_abs, P, dP, Q, dQ);
          const T sq = !safe_abs ? T(1) : (Q > 0 ? T(1) : (Q < 0 ? T(-1) : T(0)));
          const T D = T(1) + std::abs(Q);
          const T u = gy[idx] / D;             // dL/dP
          const T v = -gy[idx] * P * sq / (D * D);  // dL/d|Q| times sign(Q)
          const T sx = safe_abs ? T(1) : (xv > 0 ? T(1) : (xv < 0 ? T(-1) : T(0)));
          gx[idx] = u * dP + v * dQ * sx;
          const T z = safe_abs ? xv : std::abs(xv);
          T power = 1;
          for (int64_t i = 0; i < na; ++i) { acc_a[i] += u * power; power *= xv; }
          power = z;
          for (int64_t i = 0; i < nb; ++i) {
            const T sb = safe_abs ? T(1) : (bg[i] > 0 ? T(1) : (bg[i] < 0 ? T(-1) : T(0)));
            acc_b[i] += v * power * sb;
            power *= z;
          }
        }
      for (int64_t i = 0; i < na; ++i) ga[g * na + i] = acc_a[i];
      for (int64_t i = 0; i < nb; ++i) gb[g * nb + i] = acc_b[i];
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
    rational_forward_impl<scalar_t>(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                                    y.data_ptr<scalar_t>(), x.size(0), x.size(1), x.size(2), a.size(1), b.size(1),
                                    safe_abs);
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
    rational_backward_impl<scalar_t>(x.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                                     grad.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(), ga.data_ptr<scalar_t>(),
                                     gb.data_ptr<scalar_t>(), x.size(0), x.size(1), x.size(2), a.size(1), b.size(1),
                                     safe_abs);
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
