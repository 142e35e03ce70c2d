"""Translated labels for every classification the clinical layer produces.

Classifications carry stable keys (``acute.sam``, ``criterion.whz_lt_-3`` …); this catalogue turns
a key into Spanish, Portuguese or English. Band labels, profile names and *verify* notes live with
the profile data in :mod:`contigo.nutrition.profiles` and use the same :class:`Label` type. A test
checks that every key has a non-empty text in all three languages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Lang = Literal["es", "pt", "en"]
LANGS: tuple[Lang, ...] = ("es", "pt", "en")


@dataclass(frozen=True, slots=True)
class Label:
    """One user-facing text in the three languages of the region."""

    es: str
    pt: str
    en: str

    def get(self, lang: Lang) -> str:
        """The text in ``lang``; an unknown language is a programming error (``KeyError``)."""
        if lang not in LANGS:
            raise KeyError(lang)
        text: str = getattr(self, lang)
        return text


L = Label

_CATALOGUE: dict[str, Label] = {
    # Acute malnutrition (WHO 2013/2023).
    "acute.sam": L(
        "Desnutrición aguda severa", "Desnutrição aguda grave", "Severe acute malnutrition"
    ),
    "acute.sam_complicated": L(
        "Desnutrición aguda severa con complicaciones (hospitalizar)",
        "Desnutrição aguda grave complicada (internar)",
        "Complicated severe acute malnutrition (inpatient care)",
    ),
    "acute.mam": L(
        "Desnutrición aguda moderada", "Desnutrição aguda moderada", "Moderate acute malnutrition"
    ),
    "acute.none": L("Sin desnutrición aguda", "Sem desnutrição aguda", "No acute malnutrition"),
    "acute.unknown": L(
        "Desnutrición aguda: no se puede determinar",
        "Desnutrição aguda: não é possível determinar",
        "Acute malnutrition: cannot be determined",
    ),
    "acute.who_sam_sign": L(
        "Signo de desnutrición aguda severa (OMS): remitir",
        "Sinal de desnutrição aguda grave (OMS): encaminhar",
        "Sign of severe acute malnutrition (WHO): refer",
    ),
    # WHO SAM criteria named in red under every profile (NUTRITION.md §3).
    "sign.oedema": L(
        "Edema bilateral con fóvea: desnutrición aguda severa",
        "Edema bilateral com cacifo: desnutrição aguda grave",
        "Bilateral pitting oedema: severe acute malnutrition",
    ),
    "sign.whz_lt_-3": L(
        "Peso para la talla < −3 DE: desnutrición aguda severa",
        "Peso para estatura < −3 DP: desnutrição aguda grave",
        "Weight-for-height < −3 SD: severe acute malnutrition",
    ),
    "sign.muac_lt_115": L(
        "PB < 11,5 cm: remitir", "PB < 11,5 cm: encaminhar", "MUAC < 11.5 cm: refer"
    ),
    "criterion.whz_lt_-3": L(
        "Peso para la talla < −3 DE", "Peso para estatura < −3 DP", "Weight-for-height < −3 SD"
    ),
    "criterion.whz_lt_-2": L(
        "Peso para la talla ≥ −3 y < −2 DE",
        "Peso para estatura ≥ −3 e < −2 DP",
        "Weight-for-height ≥ −3 and < −2 SD",
    ),
    "criterion.muac_lt_115": L(
        "Perímetro braquial < 115 mm", "Perímetro braquial < 115 mm", "MUAC < 115 mm"
    ),
    "criterion.muac_lt_125": L(
        "Perímetro braquial ≥ 115 y < 125 mm",
        "Perímetro braquial ≥ 115 e < 125 mm",
        "MUAC ≥ 115 and < 125 mm",
    ),
    "criterion.oedema": L(
        "Edema bilateral con fóvea", "Edema bilateral com cacifo", "Bilateral pitting oedema"
    ),
    "complication.medical": L(
        "Complicaciones médicas o signos de peligro",
        "Complicações médicas ou sinais de perigo",
        "Medical complications or danger signs",
    ),
    "complication.oedema_severe": L(
        "Edema severo (+++)", "Edema grave (+++)", "Severe oedema (+++)"
    ),
    "complication.appetite_test_failed": L(
        "Prueba de apetito fallida", "Teste do apetite falhou", "Failed appetite test"
    ),
    # Growth (WHO Child Growth Standards interpretation).
    "growth.stunting": L("Retraso en talla", "Baixa estatura", "Stunting"),
    "growth.severe_stunting": L(
        "Retraso en talla severo", "Baixa estatura grave", "Severe stunting"
    ),
    "growth.underweight": L("Bajo peso para la edad", "Baixo peso para a idade", "Underweight"),
    "growth.severe_underweight": L(
        "Bajo peso severo para la edad", "Baixo peso grave para a idade", "Severe underweight"
    ),
    "growth.possible_risk_of_overweight": L(
        "Posible riesgo de sobrepeso", "Possível risco de sobrepeso", "Possible risk of overweight"
    ),
    "growth.overweight": L("Sobrepeso", "Sobrepeso", "Overweight"),
    "growth.obesity": L("Obesidad", "Obesidade", "Obesity"),
    "growth.hcz_lt_-2": L(
        "Perímetro cefálico < −2 DE: referir",
        "Perímetro cefálico < −2 DP: encaminhar",
        "Head circumference < −2 SD: refer",
    ),
    "growth.hcz_gt_2": L(
        "Perímetro cefálico > +2 DE: referir",
        "Perímetro cefálico > +2 DP: encaminhar",
        "Head circumference > +2 SD: refer",
    ),
    # Infants under 6 months (WHO 2023).
    "u6.at_risk": L(
        "Menor de 6 meses en riesgo de crecimiento y desarrollo deficientes",
        "Menor de 6 meses em risco de crescimento e desenvolvimento deficientes",
        "Infant under 6 months at risk of poor growth and development",
    ),
    "u6.waz_lt_-2": L(
        "Peso para la edad < −2 DE", "Peso para idade < −2 DP", "Weight-for-age < −2 SD"
    ),
    "u6.growth_faltering": L(
        "Crecimiento insuficiente", "Crescimento insuficiente", "Faltering growth"
    ),
    "u6.feeding_problem": L(
        "Problema de alimentación", "Problema de alimentação", "Feeding problem"
    ),
    # Notes attached to a classification.
    "note.remeasure": L(
        "Valor improbable: volver a medir",
        "Valor improvável: medir novamente",
        "Implausible value: measure again",
    ),
    "note.whz_flagged_not_used": L(
        "Peso para la talla marcado como improbable: no se usó para clasificar",
        "Peso para estatura marcado como improvável: não usado para classificar",
        "Weight-for-height flagged as implausible: not used to classify",
    ),
    "note.muac_flagged_not_used": L(
        "Perímetro braquial marcado como improbable: no se usó para clasificar",
        "Perímetro braquial marcado como improvável: não usado para classificar",
        "MUAC flagged as implausible: not used to classify",
    ),
    "note.muac_age_unknown": L(
        "Edad desconocida: el perímetro braquial solo aplica de 6 a 59 meses",
        "Idade desconhecida: o perímetro braquial só se aplica de 6 a 59 meses",
        "Age unknown: MUAC criteria apply only from 6 to 59 months",
    ),
    "note.muac_outside_age": L(
        "Perímetro braquial no aplica a esta edad (solo 6 a 59 meses)",
        "Perímetro braquial não se aplica a esta idade (só 6 a 59 meses)",
        "MUAC criteria do not apply at this age (6 to 59 months only)",
    ),
    "note.appetite_test_pending": L(
        "Falta la prueba de apetito", "Falta o teste do apetite", "Appetite test not yet done"
    ),
    "note.referral": L(
        "Referir según la norma nacional",
        "Encaminhar conforme a norma nacional",
        "Refer under the national norm",
    ),
    # Indicators.
    "indicator.waz": L("Peso para la edad", "Peso para idade", "Weight-for-age"),
    "indicator.haz": L("Talla para la edad", "Estatura para idade", "Length/height-for-age"),
    "indicator.whz": L("Peso para la talla", "Peso para estatura", "Weight-for-length/height"),
    "indicator.baz": L("IMC para la edad", "IMC para idade", "BMI-for-age"),
    "indicator.hcz": L(
        "Perímetro cefálico para la edad",
        "Perímetro cefálico para idade",
        "Head circumference-for-age",
    ),
    "indicator.muacz": L(
        "Perímetro braquial para la edad", "Perímetro braquial para idade", "MUAC-for-age"
    ),
    "indicator.muac": L("Perímetro braquial", "Perímetro braquial", "MUAC"),
    # Pregnant and lactating women.
    "plw.severe": L(
        "Desnutrición aguda severa (gestante o lactante)",
        "Desnutrição aguda grave (gestante ou lactante)",
        "Severe acute malnutrition (pregnant or lactating)",
    ),
    "plw.acute": L(
        "Desnutrición aguda (gestante o lactante)",
        "Desnutrição aguda (gestante ou lactante)",
        "Acute malnutrition (pregnant or lactating)",
    ),
    "plw.none": L("Sin desnutrición aguda", "Sem desnutrição aguda", "No acute malnutrition"),
    "plw.unknown": L("Sin perímetro braquial", "Sem perímetro braquial", "No MUAC measured"),
    "trimester.1": L("Primer trimestre", "Primeiro trimestre", "First trimester"),
    "trimester.2": L("Segundo trimestre", "Segundo trimestre", "Second trimester"),
    "trimester.3": L("Tercer trimestre", "Terceiro trimestre", "Third trimester"),
    # Anaemia (WHO 2024).
    "anaemia.none": L("Sin anemia", "Sem anemia", "No anaemia"),
    "anaemia.mild": L("Anemia leve", "Anemia leve", "Mild anaemia"),
    "anaemia.moderate": L("Anemia moderada", "Anemia moderada", "Moderate anaemia"),
    "anaemia.severe": L("Anemia severa", "Anemia grave", "Severe anaemia"),
    "anaemia.not_applicable": L(
        "Sin punto de corte para este grupo",
        "Sem ponto de corte para este grupo",
        "No cut-off for this group",
    ),
    "hb_group.child_6_23": L(
        "Niños de 6 a 23 meses", "Crianças de 6 a 23 meses", "Children 6–23 months"
    ),
    "hb_group.child_24_59": L(
        "Niños de 24 a 59 meses", "Crianças de 24 a 59 meses", "Children 24–59 months"
    ),
    "hb_group.woman_non_pregnant": L(
        "Mujeres no gestantes (≥ 15 años)",
        "Mulheres não gestantes (≥ 15 anos)",
        "Non-pregnant women (≥ 15 years)",
    ),
    "hb_group.pregnant_t1": L(
        "Gestante, primer trimestre", "Gestante, primeiro trimestre", "Pregnant, first trimester"
    ),
    "hb_group.pregnant_t2": L(
        "Gestante, segundo trimestre", "Gestante, segundo trimestre", "Pregnant, second trimester"
    ),
    "hb_group.pregnant_t3": L(
        "Gestante, tercer trimestre", "Gestante, terceiro trimestre", "Pregnant, third trimester"
    ),
    "hb_group.not_applicable": L(
        "Grupo sin punto de corte", "Grupo sem ponto de corte", "Group without a cut-off"
    ),
    "hb_method.who2024": L(
        "Ajuste por altitud OMS 2024 (ecuación)",
        "Ajuste por altitude OMS 2024 (equação)",
        "WHO 2024 elevation adjustment (equation)",
    ),
    "hb_method.steps": L(
        "Ajuste por altitud por tramos (norma nacional)",
        "Ajuste por altitude por faixas (norma nacional)",
        "Stepwise elevation adjustment (national norm)",
    ),
    "hb_method.none": L(
        "Sin ajuste por altitud", "Sem ajuste por altitude", "No elevation adjustment"
    ),
    # Care episodes (CMAM).
    "programme.sam_inpatient": L(
        "Atención hospitalaria de DAS", "Tratamento hospitalar de DAG", "SAM inpatient care"
    ),
    "programme.sam_otp": L(
        "Tratamiento ambulatorio de DAS",
        "Tratamento ambulatorial de DAG",
        "SAM outpatient therapeutic programme",
    ),
    "programme.mam_tsfp": L(
        "Alimentación suplementaria (DAM)",
        "Alimentação suplementar (DAM)",
        "MAM targeted supplementary feeding",
    ),
    "programme.plw_supplementation": L(
        "Suplementación de gestantes y lactantes",
        "Suplementação de gestantes e lactantes",
        "Supplementation of pregnant and lactating women",
    ),
    "programme.acute_risk_followup": L(
        "Seguimiento de riesgo de desnutrición aguda",
        "Acompanhamento de risco de desnutrição aguda",
        "Follow-up of risk of acute malnutrition",
    ),
    "programme.none": L(
        "Sin criterio de admisión", "Sem critério de admissão", "No admission criterion"
    ),
    "episode.active": L("En tratamiento", "Em tratamento", "In treatment"),
    "episode.cured": L("Recuperado", "Curado", "Cured"),
    "episode.defaulted": L("Abandono", "Abandono", "Defaulted"),
    "episode.non_responder": L("No respondedor", "Não respondedor", "Non-responder"),
    "episode.died": L("Fallecido", "Óbito", "Died"),
    "episode.transferred": L("Transferido", "Transferido", "Transferred"),
    "episode.referred_inpatient": L(
        "Referido a hospitalización", "Encaminhado para internação", "Referred to inpatient care"
    ),
    "sphere.met": L("Cumple la meta Esfera", "Cumpre a meta Esfera", "Meets the Sphere target"),
    "sphere.not_met": L(
        "No cumple la meta Esfera", "Não cumpre a meta Esfera", "Below the Sphere target"
    ),
    # Shared band text.
    "band.normal": L("Normal", "Normal", "Normal"),
    # WHO bands (WHO Child Growth Standards; WHO/UNICEF 2019). BAZ shares the WFH labels.
    "who.wfh.severe_wasting": L("Emaciación severa", "Emaciação grave", "Severely wasted"),
    "who.wfh.wasted": L("Emaciación", "Emaciação", "Wasted"),
    "who.wfh.possible_risk_overweight": L(
        "Posible riesgo de sobrepeso", "Possível risco de sobrepeso", "Possible risk of overweight"
    ),
    "who.wfh.overweight": L("Sobrepeso", "Sobrepeso", "Overweight"),
    "who.wfh.obese": L("Obesidad", "Obesidade", "Obese"),
    "who.haz.severely_stunted": L("Talla baja severa", "Baixa estatura grave", "Severely stunted"),
    "who.haz.stunted": L("Talla baja", "Baixa estatura", "Stunted"),
    "who.waz.severely_underweight": L(
        "Bajo peso severo", "Baixo peso grave", "Severely underweight"
    ),
    "who.waz.underweight": L("Bajo peso", "Baixo peso", "Underweight"),
    "who.waz.check_wfh": L(
        "Posible problema de crecimiento: ver peso para la talla",
        "Possível problema de crescimento: ver peso para estatura",
        "Possible growth problem: assess weight-for-height",
    ),
    "who.hcz.low_refer": L(
        "Perímetro cefálico bajo: referir",
        "Perímetro cefálico baixo: encaminhar",
        "Low head circumference: refer",
    ),
    "who.hcz.high_refer": L(
        "Perímetro cefálico alto: referir",
        "Perímetro cefálico alto: encaminhar",
        "High head circumference: refer",
    ),
    "who.muacz.severely_low": L(
        "Perímetro braquial muy bajo para la edad",
        "Perímetro braquial muito baixo para a idade",
        "Severely low MUAC-for-age",
    ),
    "who.muacz.low": L(
        "Perímetro braquial bajo para la edad",
        "Perímetro braquial baixo para a idade",
        "Low MUAC-for-age",
    ),
    # Brazil (SISVAN 2011); Portuguese is the reference text.
    "br.wfh.magreza_acentuada": L("Delgadez acentuada", "Magreza acentuada", "Marked thinness"),
    "br.wfh.magreza": L("Delgadez", "Magreza", "Thinness"),
    "br.wfh.eutrofia": L("Eutrofia", "Eutrofia", "Normal weight (eutrophy)"),
    "br.wfh.risco_sobrepeso": L("Riesgo de sobrepeso", "Risco de sobrepeso", "Risk of overweight"),
    "br.wfh.sobrepeso": L("Sobrepeso", "Sobrepeso", "Overweight"),
    "br.wfh.obesidade": L("Obesidad", "Obesidade", "Obesity"),
    "br.haz.muito_baixa": L(
        "Talla muy baja para la edad", "Muito baixa estatura para a idade", "Very short for age"
    ),
    "br.haz.baixa": L("Talla baja para la edad", "Baixa estatura para a idade", "Short for age"),
    "br.haz.adequada": L(
        "Talla adecuada para la edad", "Estatura adequada para a idade", "Adequate height for age"
    ),
    "br.waz.muito_baixo": L(
        "Peso muy bajo para la edad", "Muito baixo peso para a idade", "Very low weight for age"
    ),
    "br.waz.baixo": L("Peso bajo para la edad", "Baixo peso para a idade", "Low weight for age"),
    "br.waz.adequado": L(
        "Peso adecuado para la edad", "Peso adequado para a idade", "Adequate weight for age"
    ),
    "br.waz.elevado": L(
        "Peso elevado para la edad", "Peso elevado para a idade", "High weight for age"
    ),
    # Colombia (Resolución 2465 de 2016); Spanish is the reference text.
    "co.whz.dnt_aguda_severa": L(
        "Desnutrición aguda severa", "Desnutrição aguda grave", "Severe acute malnutrition"
    ),
    "co.whz.dnt_aguda_moderada": L(
        "Desnutrición aguda moderada", "Desnutrição aguda moderada", "Moderate acute malnutrition"
    ),
    "co.whz.riesgo_dnt_aguda": L(
        "Riesgo de desnutrición aguda", "Risco de desnutrição aguda", "Risk of acute malnutrition"
    ),
    "co.whz.adecuado": L(
        "Peso adecuado para la talla", "Peso adequado para a estatura", "Adequate weight for height"
    ),
    "co.whz.riesgo_sobrepeso": L("Riesgo de sobrepeso", "Risco de sobrepeso", "Risk of overweight"),
    "co.whz.sobrepeso": L("Sobrepeso", "Sobrepeso", "Overweight"),
    "co.whz.obesidad": L("Obesidad", "Obesidade", "Obesity"),
    "co.haz.talla_baja": L(
        "Talla baja para la edad o retraso en talla",
        "Baixa estatura para a idade",
        "Short for age (stunting)",
    ),
    "co.haz.riesgo": L("Riesgo de talla baja", "Risco de baixa estatura", "Risk of short stature"),
    "co.haz.adecuada": L(
        "Talla adecuada para la edad", "Estatura adequada para a idade", "Adequate height for age"
    ),
    "co.waz.dnt_global": L("Desnutrición global", "Desnutrição global", "Underweight"),
    "co.waz.riesgo": L(
        "Riesgo de desnutrición global", "Risco de desnutrição global", "Risk of underweight"
    ),
    "co.waz.adecuado": L(
        "Peso adecuado para la edad", "Peso adequado para a idade", "Adequate weight for age"
    ),
    "co.waz.no_aplica": L(
        "No aplica (verificar con IMC para la edad)",
        "Não se aplica (verificar com IMC para idade)",
        "Not applicable (check BMI-for-age)",
    ),
    "co.baz.no_aplica": L(
        "No aplica (verificar con peso para la talla)",
        "Não se aplica (verificar com peso para estatura)",
        "Not applicable (check weight-for-height)",
    ),
    "co.baz.riesgo_sobrepeso": L("Riesgo de sobrepeso", "Risco de sobrepeso", "Risk of overweight"),
    "co.baz.sobrepeso": L("Sobrepeso", "Sobrepeso", "Overweight"),
    "co.baz.obesidad": L("Obesidad", "Obesidade", "Obesity"),
    "co.hcz.riesgo_bajo": L(
        "Factor de riesgo para el neurodesarrollo (bajo)",
        "Fator de risco para o neurodesenvolvimento (baixo)",
        "Neurodevelopmental risk factor (low)",
    ),
    "co.hcz.riesgo_alto": L(
        "Factor de riesgo para el neurodesarrollo (alto)",
        "Fator de risco para o neurodesenvolvimento (alto)",
        "Neurodevelopmental risk factor (high)",
    ),
    # Peru (NTS 137-MINSA/2017).
    "pe.whz.desnutricion_severa": L(
        "Desnutrición severa", "Desnutrição grave", "Severe malnutrition"
    ),
    "pe.whz.desnutricion_aguda": L("Desnutrición aguda", "Desnutrição aguda", "Acute malnutrition"),
    "pe.whz.sobrepeso": L("Sobrepeso", "Sobrepeso", "Overweight"),
    "pe.whz.obesidad": L("Obesidad", "Obesidade", "Obesity"),
    "pe.haz.talla_baja_severa": L(
        "Talla baja severa", "Baixa estatura grave", "Severe short stature"
    ),
    "pe.haz.talla_baja": L("Talla baja", "Baixa estatura", "Short stature"),
    "pe.haz.alto": L("Alto", "Alto", "Tall"),
    # Profiles.
    "profile.WHO": L("OMS (predeterminado)", "OMS (padrão)", "WHO (default)"),
    "profile.CO": L("Colombia", "Colômbia", "Colombia"),
    "profile.BR": L("Brasil", "Brasil", "Brazil"),
    "profile.PE": L("Perú", "Peru", "Peru"),
    "profile.EC": L("Ecuador", "Equador", "Ecuador"),
    "profile.PA": L("Panamá", "Panamá", "Panama"),
    # Verify notes (NUTRITION.md marks these rules **verify**).
    "verify.u6": L(
        "Verificar: lista completa de criterios de riesgo en menores de 6 meses (OMS 2023)",
        "Verificar: lista completa de critérios de risco em menores de 6 meses (OMS 2023)",
        "Verify: the full list of risk criteria for infants under 6 months (WHO 2023)",
    ),
    "verify.hb_severity": L(
        "Verificar: bandas de severidad de anemia (OMS 2024)",
        "Verificar: faixas de gravidade da anemia (OMS 2024)",
        "Verify: anaemia severity bands (WHO 2024)",
    ),
    "verify.hb_equation": L(
        "Verificar: ecuación de ajuste de hemoglobina por altitud (OMS 2024)",
        "Verificar: equação de ajuste da hemoglobina por altitude (OMS 2024)",
        "Verify: haemoglobin elevation equation (WHO 2024)",
    ),
    "verify.hb_smoking": L(
        "Verificar: ajuste de hemoglobina por tabaquismo (desactivado)",
        "Verificar: ajuste da hemoglobina por tabagismo (desativado)",
        "Verify: haemoglobin smoking adjustment (off)",
    ),
    "verify.co_tables": L(
        "Verificar: tablas exactas de la Resolución 2465 de 2016",
        "Verificar: tabelas exatas da Resolução 2465 de 2016",
        "Verify: the exact tables of Resolución 2465/2016",
    ),
    "verify.co_muac": L(
        "Verificar: perímetro braquial < 11,5 cm solo como criterio de tamizaje y remisión",
        "Verificar: perímetro braquial < 11,5 cm só como critério de triagem e encaminhamento",
        "Verify: MUAC < 11.5 cm as a screening and referral criterion only",
    ),
    "verify.pe": L(
        "Verificar: clasificación NTS 137-MINSA/2017 y ajuste nacional de hemoglobina por altitud",
        "Verificar: classificação NTS 137-MINSA/2017 e ajuste nacional da hemoglobina por altitude",
        "Verify: NTS 137-MINSA/2017 classification and national haemoglobin altitude adjustment",
    ),
    "verify.inherited": L(
        "Verificar: seguimiento, egreso y corte en gestantes tomados del perfil OMS",
        "Verificar: acompanhamento, alta e corte em gestantes tomados do perfil OMS",
        "Verify: follow-up, exit rules and PLW cut-off are taken from the WHO profile",
    ),
    "verify.gwg_iom": L(
        "Verificar: rangos de ganancia de peso gestacional (IOM 2009)",
        "Verificar: faixas de ganho de peso gestacional (IOM 2009)",
        "Verify: gestational weight gain ranges (IOM 2009)",
    ),
    "verify.gwg_co": L(
        "Verificar: se muestran los rangos IOM 2009; falta codificar la gráfica de Atalah "
        "(Resolución 2465 de 2016)",
        "Verificar: mostram-se as faixas IOM 2009; falta codificar o gráfico de Atalah "
        "(Resolução 2465 de 2016)",
        "Verify: IOM 2009 ranges are shown; the Atalah chart (Resolución 2465/2016) is not yet "
        "encoded",
    ),
    "verify.gwg_br": L(
        "Verificar: se muestran los rangos IOM 2009; faltan las curvas brasileñas de 2022 "
        "(Kac et al.)",
        "Verificar: mostram-se as faixas IOM 2009; faltam as curvas brasileiras de 2022 "
        "(Kac et al.)",
        "Verify: IOM 2009 ranges are shown; the 2022 Brazilian charts (Kac et al.) are not yet "
        "encoded",
    ),
    "verify.placeholder": L(
        "Sin verificar: se usa el perfil OMS hasta codificar la norma nacional",
        "Não verificado: usa-se o perfil OMS até codificar a norma nacional",
        "Unverified: WHO profile used until the national norm is encoded",
    ),
}

LABELS: Mapping[str, Label] = MappingProxyType(_CATALOGUE)


def label(key: str, lang: Lang) -> str:
    """The text for ``key`` in ``lang``. An unknown key raises ``KeyError``: a missing
    translation is a bug to catch in tests, never a blank on a clinical screen."""
    return LABELS[key].get(lang)
