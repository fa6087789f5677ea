/* The calibration page: draws the server-built Plotly figures. */
import { drawFigures } from "./figures.js";

drawFigures(document.getElementById("calibration-figures"));
