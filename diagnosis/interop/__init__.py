"""Pure DICOM and FHIR interoperability: result objects, FHIR resources, the DIMSE and STOW-RS client (no models)."""
