// Matrix multiply for the kernels: OpenBLAS cblas_sgemm through P/Invoke (Debian's libopenblas0), and a slow, obviously
// correct reference beside it that the tests compare against.
using System.Runtime.InteropServices;

namespace Bert4Rec.Training.Kernels;

public static unsafe partial class Blas
{
    private const string Library = "libopenblas.so.0";
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    [LibraryImport(Library, EntryPoint = "cblas_sgemm")]
    private static partial void cblas_sgemm(int order,      // CBLAS_ORDER
                                            int transA,     // CBLAS_TRANSPOSE
                                            int transB,     // CBLAS_TRANSPOSE
                                            int m, int n, int k,
                                            float alpha,
                                            float* a, int lda,
                                            float* b, int ldb,
                                            float beta,
                                            float* c, int ldc);

    [LibraryImport(Library, EntryPoint = "openblas_set_num_threads")]
    private static partial void openblas_set_num_threads(int n);

    private static int _threads = -1;
    private static readonly object ThreadsLock = new();

    /// <summary>
    /// Sets OpenBLAS's thread count (process-wide; a call with the current value does nothing). Results of the large
    /// products are bitwise reproducible for a fixed count, so one process should run one training at a time.
    /// </summary>
    public static void SetThreads(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n));
        lock (ThreadsLock)
        {
            if (_threads == n) return;
            try { openblas_set_num_threads(n); }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException($"OpenBLAS ({Library}) is missing: install it with scripts/setup.sh (Debian libopenblas-dev). {e.Message}", e);
            }
            _threads = n;
        }
    }

    /// <summary>
    /// C (m,n) = alpha * op(A) op(B) + beta * C, row-major. op(A) is (m,k): A is (m,k) with leading dimension lda, or (k,m)
    /// when transA. op(B) is (k,n): B is (k,n), or (n,k) when transB.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb,
                             float beta, float* c, int ldc)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            // C = beta * C
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
            return;
        }
        try
        {
            cblas_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        catch (DllNotFoundException e)
        {
            throw new DllNotFoundException($"OpenBLAS ({Library}) is missing: install it with scripts/setup.sh (Debian libopenblas-dev). {e.Message}", e);
        }
    }

    /// <summary>Span form of <see cref="Sgemm(bool,bool,int,int,int,float,float*,int,float*,int,float,float*,int)"/>.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
                             ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckSizes(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Sgemm(transA, transB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    /// <summary>The reference: three loops in double precision, same contract as <see cref="Sgemm(bool,bool,int,int,int,float,ReadOnlySpan{float},int,ReadOnlySpan{float},int,float,Span{float},int)"/>.</summary>
    public static void SgemmNaive(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
                                  ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckSizes(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = (float)(alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]));
            }
    }

    private static void CheckSizes(bool transA, bool transB, int m, int n, int k, int aLen, int lda, int bLen, int ldb, int cLen, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"negative size m={m} n={n} k={k}");
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (aRows > 0 && (lda < aCols || (long)(aRows - 1) * lda + aCols > aLen)) throw new ArgumentException($"A too small or lda {lda} < {aCols}");
        if (bRows > 0 && (ldb < bCols || (long)(bRows - 1) * ldb + bCols > bLen)) throw new ArgumentException($"B too small or ldb {ldb} < {bCols}");
        if (m > 0 && (ldc < n || (long)(m - 1) * ldc + n > cLen)) throw new ArgumentException($"C too small or ldc {ldc} < {n}");
    }
}
