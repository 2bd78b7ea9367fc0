# Reference numbers for inference, comparison, variance explained, effects and per-school estimates
# on the HSB data, from R: lme4 1.1-31, lmerTest, pbkrtest, performance, clubSandwich, psych.
# Run from this folder: Rscript hsb_inference.R   (writes hsb_inference.json)
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(performance)
  library(clubSandwich); library(psych); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses; d$cgm_ses <- d$ses - mean(d$ses)
d$school <- factor(d$school)
out <- list()
isao_f <- mathach ~ meanses + sector + cwc_ses + cwc_ses:meanses + cwc_ses:sector + (cwc_ses | school)
isao <- lmerTest::lmer(isao_f, d)
ct <- coef(summary(isao, ddf = "Satterthwaite"))
out$satterthwaite_isao <- list(term = rownames(ct), df = unname(ct[, "df"]), t = unname(ct[, "t value"]),
                               p = unname(ct[, "Pr(>|t|)"]))
ck <- coef(summary(isao, ddf = "Kenward-Roger"))
out$kenward_roger_isao <- list(term = rownames(ck), se = unname(ck[, "Std. Error"]), df = unname(ck[, "df"]),
                               p = unname(ck[, "Pr(>|t|)"]))
# likelihood-ratio tests (anova refits REML models with ML)
null <- lme4::lmer(mathach ~ 1 + (1 | school), d)
ri <- lme4::lmer(mathach ~ cwc_ses + (1 | school), d)
rc <- lme4::lmer(mathach ~ cwc_ses + (cwc_ses | school), d)
isao4 <- lme4::lmer(isao_f, d)
a1 <- anova(ri, rc, refit = FALSE)   # same fixed part: REML deviances comparable
a2 <- anova(rc, isao4)               # different fixed parts: ML refit
out$lrt_ri_vs_rc_reml <- list(chisq = a1$Chisq[2], df = a1$Df[2], p_naive = a1$`Pr(>Chisq)`[2],
  p_mixture_50_50_chi1_chi2 = 0.5 * pchisq(a1$Chisq[2], 1, lower.tail = FALSE) + 0.5 * pchisq(a1$Chisq[2], 2, lower.tail = FALSE))
out$lrt_rc_vs_isao_ml <- list(deviance_ml = a2$deviance, chisq = a2$Chisq[2], df = a2$Df[2], p = a2$`Pr(>Chisq)`[2],
  aic = a2$AIC, bic = a2$BIC)
# variance explained
r2n <- r2_nakagawa(isao4)
out$r2_nakagawa_isao <- list(marginal = unname(r2n$R2_marginal), conditional = unname(r2n$R2_conditional))
r2n_ri <- r2_nakagawa(ri)
out$r2_nakagawa_ri <- list(marginal = unname(r2n_ri$R2_marginal), conditional = unname(r2n_ri$R2_conditional))
out$icc_null <- list(icc = unname(performance::icc(null)$ICC_adjusted))
# within / between / contextual effects with standard errors
wb <- lme4::lmer(mathach ~ cwc_ses + cm_ses + (1 | school), d)
V <- as.matrix(vcov(wb)); b <- fixef(wb)
ctx <- b["cm_ses"] - b["cwc_ses"]; ctx_se <- sqrt(V["cm_ses","cm_ses"] + V["cwc_ses","cwc_ses"] - 2 * V["cm_ses","cwc_ses"])
out$effects_ses <- list(within = unname(b["cwc_ses"]), within_se = sqrt(V["cwc_ses","cwc_ses"]),
  between = unname(b["cm_ses"]), between_se = sqrt(V["cm_ses","cm_ses"]), contextual = unname(ctx), contextual_se = unname(ctx_se))
# cluster-robust (CR2) standard errors of the isao fixed effects
cr <- coef_test(isao4, vcov = "CR2", cluster = d$school, test = "Satterthwaite")
out$cr2_isao <- list(term = cr$Coef, se = cr$SE, df = cr$df_Satt, p = cr$p_Satt)
# per-school empirical Bayes coefficients of the random-coefficient model (first 5 schools in data order)
re <- ranef(rc, condVar = TRUE); pv <- attr(re$school, "postVar")
sch <- levels(d$school)[1:5]; idx <- match(sch, rownames(re$school))
out$eb_rc_first5 <- list(school = sch, u0 = re$school[idx, 1], u1 = re$school[idx, 2],
  u0_sd = sqrt(pv[1, 1, idx]), u1_sd = sqrt(pv[2, 2, idx]),
  beta0 = coef(rc)$school[idx, 1], beta1 = coef(rc)$school[idx, 2])
# profile confidence intervals of the random-coefficient model (SDs, correlation, sigma)
ci <- confint(rc, method = "profile", oldNames = FALSE)
out$profile_ci_rc <- list(param = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
# within / between correlations and ICC1 / ICC2 of student variables
sb <- statsBy(d[, c("school", "mathach", "ses", "minority", "female")], group = "school", cors = TRUE)
out$statsby <- list(vars = colnames(sb$rwg), rwg = unname(sb$rwg), rbg = unname(sb$rbg),
  icc1 = unname(sb$ICC1), icc2 = unname(sb$ICC2))
write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'hsb_inference.json')
cat("written\n")
