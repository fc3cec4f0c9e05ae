//! Collects every error of one macro call, so that all are reported at once.

use proc_macro2::TokenStream;

/// Errors found so far, each on its own span.
#[derive(Default)]
pub struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records an error at `spanned`'s span.
    pub fn error_at<T: quote::ToTokens>(&mut self, spanned: T, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(spanned, message));
    }

    /// Records an error.
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(error),
            None => self.first = Some(error),
        }
    }

    /// Records the error of a failed parse and yields its value otherwise.
    pub fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    /// Whether nothing went wrong.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The errors as `compile_error!` invocations.
    pub fn into_compile_errors(self) -> TokenStream {
        self.first.map(|e| e.to_compile_error()).unwrap_or_default()
    }

    /// `item` as written, followed by the errors: what a rejected `impl` block expands to,
    /// so that the code calling its methods still compiles.
    pub fn beside(self, item: &impl quote::ToTokens) -> TokenStream {
        let errors = self.into_compile_errors();
        quote::quote!(#item #errors)
    }
}
