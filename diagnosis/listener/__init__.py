"""The DICOM Storage SCP (`manage.py dicom_listener`): receives studies from a PACS or a modality (issue 9)."""
