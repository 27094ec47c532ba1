//! The answer language: what a parsed answer is.
//!
//! Numbers stay exact ([`Num`]: a rational plus whether it was written as a decimal, which
//! decides float-rounding comparisons). Structures keep what matters for grading: set vs tuple,
//! interval bracket kinds, relation operators.

use num_rational::BigRational;

/// A numeric literal.
#[derive(Debug, Clone, PartialEq)]
pub struct Num {
    /// Its exact value.
    pub value: BigRational,
    /// Written with a decimal point or exponent (a "float" for comparison purposes).
    pub is_float: bool,
}

/// Named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constant {
    /// π.
    Pi,
    /// Euler's number.
    E,
    /// The imaginary unit.
    I,
    /// ∞ (only meaningful as an interval end or a limit value).
    Infinity,
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// sine
    Sin,
    /// cosine
    Cos,
    /// tangent
    Tan,
    /// cotangent
    Cot,
    /// secant
    Sec,
    /// cosecant
    Csc,
    /// arcsine
    Asin,
    /// arccosine
    Acos,
    /// arctangent
    Atan,
    /// hyperbolic sine
    Sinh,
    /// hyperbolic cosine
    Cosh,
    /// hyperbolic tangent
    Tanh,
    /// natural logarithm
    Ln,
    /// logarithm, base as second argument (default 10 for `\log`: SymPy uses e; see parser)
    Log,
    /// e^x
    Exp,
    /// square root, or n-th root with a second argument
    Sqrt,
    /// |x|
    Abs,
    /// ⌊x⌋
    Floor,
    /// ⌈x⌉
    Ceil,
    /// n!
    Factorial,
    /// binomial coefficient
    Binom,
    /// greatest common divisor
    Gcd,
    /// least common multiple
    Lcm,
    /// minimum
    Min,
    /// maximum
    Max,
    /// remainder
    Mod,
}

/// A scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Num(Num),
    /// A constant.
    Const(Constant),
    /// A variable (`x`, `x_1`, `\alpha`).
    Sym(String),
    /// −a.
    Neg(Box<Expr>),
    /// a + b + …
    Add(Vec<Expr>),
    /// a · b · …
    Mul(Vec<Expr>),
    /// a / b.
    Div(Box<Expr>, Box<Expr>),
    /// a ^ b.
    Pow(Box<Expr>, Box<Expr>),
    /// A built-in function.
    Call(Func, Vec<Expr>),
    /// An undefined function applied to arguments, `f(x)`.
    Apply(String, Vec<Expr>),
}

/// Relation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// =
    Eq,
    /// ≈
    Approx,
    /// ≠
    Ne,
    /// <
    Lt,
    /// ≤
    Le,
    /// >
    Gt,
    /// ≥
    Ge,
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A scalar.
    Expr(Expr),
    /// `\{a, b\}`, `\pm`, `\emptyset`: order-free, duplicates irrelevant.
    Set(Vec<Answer>),
    /// `(a, b)`: ordered.
    Tuple(Vec<Answer>),
    /// A bare comma list `a, b`: ordered against a tuple, order-free against a set or list.
    List(Vec<Answer>),
    /// An interval with its bracket kinds.
    Interval {
        /// Lower end.
        lo: Expr,
        /// Upper end.
        hi: Expr,
        /// `[` rather than `(`.
        lo_closed: bool,
        /// `]` rather than `)`.
        hi_closed: bool,
    },
    /// A union of intervals or sets.
    Union(Vec<Answer>),
    /// A matrix (a column vector is n×1).
    Matrix(Vec<Vec<Expr>>),
    /// A chain `a op b op c …` (`ops.len() + 1 == terms.len()`).
    Relation {
        /// Operands.
        terms: Vec<Expr>,
        /// Operators between them.
        ops: Vec<RelOp>,
    },
    /// `x \in S`.
    Member(Expr, Box<Answer>),
    /// Text that is not mathematics (compared as normalised words).
    Text(String),
}
