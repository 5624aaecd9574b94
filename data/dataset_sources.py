"""The public datasets the models learn from and are tested on: name, what they hold, reference and licence.
One table for the model card, the v1 card and the Model page (each kept its own copy, and they drifted).
No pandas here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSource:
    name: str  # as the card and the Model page name it
    images: str  # what the project uses of it, for the Model page
    citation: str
    licence: str
    role: str = ""  # how it is used, where that is not "training and out-of-fold validation"

    def card_line(self, name: str | None = None) -> str:
        """``name (role): citation. licence.``, one bullet of a model card's data section."""
        role = f" ({self.role})" if self.role else ""
        return f"{name or self.name}{role}: {self.citation}. {self.licence}."


HAM10000 = DatasetSource(
    "HAM10000",
    "10,015 dermoscopic images (7 diagnoses)",
    "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source dermatoscopic "
    "images of common pigmented skin lesions. Sci Data 5, 180161 (2018). doi:10.1038/sdata.2018.161",
    "CC BY-NC 4.0",
)
ISIC2017 = DatasetSource(
    "ISIC 2017",
    "2,150 dermoscopic images (melanoma / not)",
    "Codella NCF et al. Skin lesion analysis toward melanoma detection: a challenge at the 2017 International "
    "Symposium on Biomedical Imaging (ISBI), hosted by the International Skin Imaging Collaboration (ISIC). "
    "ISBI 2018",
    "CC BY-NC 4.0",
)
SIIM_ISIC2020 = DatasetSource(
    "SIIM-ISIC 2020",
    "751-image subset (several images per patient) and 80 complete patients (1,984 images, every lesion each "
    "patient has)",
    "Rotemberg V et al. A patient-centric dataset of images and metadata for identifying melanomas using "
    "clinical context. Sci Data 8, 34 (2021). doi:10.1038/s41597-021-00815-z",
    "CC BY-NC 4.0",
)
DERM7PT = DatasetSource(
    "Derm7pt",
    "1,011 dermoscopic images from another source and camera; never trained or tuned on",
    "Kawahara J, Daneshvar S, Argenziano G, Hamarneh G. Seven-point checklist and skin lesion classification "
    "using multitask multimodal neural nets. IEEE JBHI 23(2), 538-546 (2019). doi:10.1109/JBHI.2018.2824327",
    "CC BY-NC-ND 4.0",
    role="external test only, never trained or tuned on",
)
SOURCES: tuple[DatasetSource, ...] = (HAM10000, ISIC2017, SIIM_ISIC2020, DERM7PT)
