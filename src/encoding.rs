use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Writes standard base64 with padding.
pub(crate) const STANDARD_BASE64: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Reads standard base64 with or without padding: secrets are accepted in both forms.
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
