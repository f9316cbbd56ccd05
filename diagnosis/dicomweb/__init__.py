"""DICOMweb STOW-RS: `POST /dicomweb/studies` (issue 9)."""
