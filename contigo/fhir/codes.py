"""The code systems of Contigo's FHIR export (docs/fhir.md lists them with their sources).

LOINC for what LOINC names (the measurements, the IPS document and its sections), ICD-10 for
the conditions, HL7 terminology for statuses and roles, and Contigo's own code systems, under
:data:`BASE`, for what has no standard code we could verify: the WHO z-scores, the programmes,
the products given, and the identifiers.
"""

from __future__ import annotations

BASE = "https://contigo.example.org/fhir"
"""Placeholder canonical base until the programme registers its own; changing it changes only
the ``system`` of Contigo's own codes and identifiers."""

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"

CONTIGO_ID = f"{BASE}/sid/contigo-id"
ENCOUNTER_ID = f"{BASE}/sid/encounter"
INDICATOR = f"{BASE}/CodeSystem/indicator"
PROGRAMME = f"{BASE}/CodeSystem/programme"
PRODUCT = f"{BASE}/CodeSystem/product"
ANAEMIA = f"{BASE}/CodeSystem/anaemia-severity"

#: Measurements with a LOINC code: (wire field, LOINC, display, UCUM unit, category).
MEASUREMENTS = (
    ("weight_kg", "29463-7", "Body weight", "kg", "vital-signs"),
    ("headc_cm", "9843-4", "Head Occipital-frontal circumference", "cm", "vital-signs"),
    ("muac_mm", "56072-2", "Mid upper arm circumference", "mm", "vital-signs"),
    ("hb_g_l", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", "laboratory"),
)
HEIGHT = ("8302-2", "Body height")
LENGTH = ("8306-3", "Body height --lying")

#: WHO z-scores: no LOINC code verified for them, so Contigo's own indicator codes.
ZSCORES = {
    "waz": "Weight-for-age z-score (WHO)",
    "haz": "Length/height-for-age z-score (WHO)",
    "whz": "Weight-for-length/height z-score (WHO)",
    "baz": "BMI-for-age z-score (WHO)",
    "hcz": "Head circumference-for-age z-score (WHO)",
    "muacz": "MUAC-for-age z-score (WHO)",
}

#: Programmes as conditions: (ICD-10 code, display) or None when the programme is no diagnosis.
CONDITIONS = {
    "sam_inpatient": ("E43", "Unspecified severe protein-energy malnutrition"),
    "sam_otp": ("E43", "Unspecified severe protein-energy malnutrition"),
    "mam_tsfp": ("E44.0", "Moderate protein-energy malnutrition"),
    "plw_supplementation": ("E44.0", "Moderate protein-energy malnutrition"),
    "acute_risk_followup": None,
}
ANAEMIA_ICD10 = ("D64.9", "Anaemia, unspecified")

PRODUCTS = {
    "rutf": "Ready-to-use therapeutic food (RUTF)",
    "rusf": "Ready-to-use supplementary food (RUSF)",
    "lns_sq": "Lipid-based nutrient supplement, small quantity",
    "lns_mq": "Lipid-based nutrient supplement, medium quantity",
    "ifa": "Iron and folic acid",
    "mmn": "Multiple micronutrient supplement",
    "vitamin_a": "Vitamin A",
    "deworming": "Deworming (anthelmintic)",
    "zinc_ors": "Zinc and oral rehydration salts",
    "micronutrient_powder": "Micronutrient powder",
    "amoxicillin": "Amoxicillin",
}

SECTIONS = {
    "problems": ("11450-4", "Problem list - Reported"),
    "medications": ("10160-0", "History of Medication use Narrative"),
    "allergies": ("48765-2", "Allergies and adverse reactions Document"),
    "vitals": ("8716-3", "Vital signs"),
    "results": ("30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
}
DOCUMENT = ("60591-5", "Patient summary Document")
