"""Class names and published label counts of the datasets `ral` reads (see docs/dataset.md)."""

from __future__ import annotations

# CXR-LT 2023 (MIMIC-CXR-JPG): 26 findings and their training-set counts (264,849 images).
CXRLT_TRAIN_COUNTS: dict[str, int] = {
    "Atelectasis": 67597,
    "Calcification of the Aorta": 4361,
    "Cardiomegaly": 76900,
    "Consolidation": 16038,
    "Edema": 38574,
    "Emphysema": 4255,
    "Enlarged Cardiomediastinum": 30119,
    "Fibrosis": 1158,
    "Fracture": 11883,
    "Hernia": 4049,
    "Infiltration": 10218,
    "Lung Lesion": 2533,
    "Lung Opacity": 79931,
    "Mass": 5529,
    "No Finding": 41869,
    "Nodule": 7663,
    "Pleural Effusion": 69240,
    "Pleural Other": 675,
    "Pleural Thickening": 3369,
    "Pneumomediastinum": 788,
    "Pneumonia": 48093,
    "Pneumoperitoneum": 543,
    "Pneumothorax": 14983,
    "Subcutaneous Emphysema": 2453,
    "Support Devices": 89140,
    "Tortuous Aorta": 3499,
}
CXRLT_CLASSES: list[str] = list(CXRLT_TRAIN_COUNTS)
CXRLT_NUM_TRAIN_IMAGES = 264849

# NIH ChestX-ray14: 14 findings + "No Finding" (spelling of the `Finding Labels` column).
NIH_CLASSES: list[str] = [
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
    "No Finding",
]

# CheXpert: the 14 observations, in the column order of train.csv / valid.csv.
CHEXPERT_CLASSES: list[str] = [
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
]

# ISIC 2018 task 3: column order of the ground-truth CSV and the training counts (10,015 images).
ISIC2018_CLASSES: list[str] = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
ISIC2018_TRAIN_COUNTS: dict[str, int] = {
    "NV": 6705,
    "MEL": 1113,
    "BKL": 1099,
    "BCC": 514,
    "AKIEC": 327,
    "VASC": 142,
    "DF": 115,
}

# APTOS 2019: diabetic-retinopathy grade 0-4 in column `diagnosis` (3,662 training images).
APTOS_CLASSES: list[str] = ["No DR", "Mild", "Moderate", "Severe", "Proliferative DR"]
APTOS_TRAIN_COUNTS: dict[str, int] = {
    "No DR": 1805,
    "Mild": 370,
    "Moderate": 999,
    "Severe": 193,
    "Proliferative DR": 295,
}

# CXR-LT 2024 (MIMIC-CXR-JPG), task 1: the 40 findings of `train_labeled.csv`.
CXRLT2024_TASK1_CLASSES: list[str] = [
    "Adenopathy",
    "Atelectasis",
    "Azygos Lobe",
    "Calcification of the Aorta",
    "Cardiomegaly",
    "Clavicle Fracture",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Enlarged Cardiomediastinum",
    "Fibrosis",
    "Fissure",
    "Fracture",
    "Granuloma",
    "Hernia",
    "Hydropneumothorax",
    "Infarction",
    "Infiltration",
    "Kyphosis",
    "Lobar Atelectasis",
    "Lung Lesion",
    "Lung Opacity",
    "Mass",
    "Nodule",
    "Normal",
    "Pleural Effusion",
    "Pleural Other",
    "Pleural Thickening",
    "Pneumomediastinum",
    "Pneumonia",
    "Pneumoperitoneum",
    "Pneumothorax",
    "Pulmonary Embolism",
    "Pulmonary Hypertension",
    "Rib Fracture",
    "Round(ed) Atelectasis",
    "Subcutaneous Emphysema",
    "Support Devices",
    "Tortuous Aorta",
    "Tuberculosis",
]
# CXR-LT 2024, task 2: the 26 CXR-LT 2023 findings with "Normal" in place of "No Finding" (sorted).
CXRLT2024_TASK2_CLASSES: list[str] = sorted("Normal" if c == "No Finding" else c for c in CXRLT_CLASSES)

# MIMIC-CXR-JPG 2.x `mimic-cxr-2.0.0-chexpert.csv(.gz)` / `-negbio`: the 14 label columns, in file order.
MIMIC_CLASSES: list[str] = sorted(CHEXPERT_CLASSES)

# VinDr-CXR (the Kaggle VinBigData `train.csv`): `class_name` by `class_id` 0-14.
VINDR_CLASSES: list[str] = [
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Consolidation",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Nodule/Mass",
    "Other lesion",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
    "No finding",
]

#: Named class lists: ``classes="cxrlt2024-task2"`` (config ``dataset.classes: cxrlt2024-task2``).
CLASS_SETS: dict[str, list[str]] = {
    "cxrlt2023": CXRLT_CLASSES,
    "cxrlt2024-task1": CXRLT2024_TASK1_CLASSES,
    "cxrlt2024-task2": CXRLT2024_TASK2_CLASSES,
    "chexpert": CHEXPERT_CLASSES,
    "mimic": MIMIC_CLASSES,
    "nih": NIH_CLASSES,
    "vindr": VINDR_CLASSES,
}
