# lme4 ML deviances of the workshop notebook's build-up sequence (notebooks/workshop.ipynb).
# Run from this folder: Rscript workshop_buildup.R   (writes workshop_buildup.json)
suppressMessages({library(lme4); library(jsonlite)})
d <- read.csv('../../mlmwrap/datasets/hsb.csv')
d$cm_ses <- ave(d$ses, d$school); d$cwc_ses <- d$ses - d$cm_ses; d$school <- factor(d$school)
m1 <- lmer(mathach ~ 1 + (1 | school), d, REML = FALSE)
m2 <- lmer(mathach ~ cwc_ses + minority + (1 | school), d, REML = FALSE)
m3 <- lmer(mathach ~ cwc_ses + minority + (cwc_ses + minority | school), d, REML = FALSE)
m4 <- lmer(mathach ~ cm_ses + sector + cwc_ses + cwc_ses:sector + minority + minority:cm_ses +
           minority:sector + (cwc_ses + minority | school), d, REML = FALSE)
out <- list(models = c("M1", "M2", "M3", "M4"),
            deviance_ml = sapply(list(m1, m2, m3, m4), deviance))
write(toJSON(out, digits = I(10), auto_unbox = TRUE, pretty = TRUE), 'workshop_buildup.json')
print(out)
